// MCP: the registered MCP servers with their connection state and tools (GET /api/mcp/clients), a
// reconnect button per server, and the most recent tool calls (GET /api/mcp-logs). Refreshes every
// few seconds while open.
import { h, clear, api, enc, toast, pageHeader, emptyState, fmtMs, fmtTime } from './lib.js';

const STATE_CLASS = { connected: 'ok', disconnected: 'warn', error: 'bad' };

function serverRow(c, refresh) {
  const cfg = c.config;
  const reconnect = h('button', { type: 'button', class: 'btn small', text: 'Reconnect' });
  reconnect.addEventListener('click', async () => {
    try {
      await api(`/api/mcp/client/${enc(cfg.client_id)}/reconnect`, { method: 'POST' });
      toast(`Reconnecting ${cfg.name}`);
      await refresh();
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  const where = cfg.connection_type === 'stdio' ? (cfg.stdio_config || {}).command : cfg.connection_string;
  const tools = c.tools.length ? c.tools.map((t) => h('span', { class: 'badge', text: `${cfg.name}-${t.name}` })) : h('span', { class: 'muted', text: 'none' });
  return h(
    'tr',
    { 'data-mcp': cfg.name },
    h('th', { scope: 'row', text: cfg.name }),
    h('td', { text: cfg.connection_type }),
    h('td', { class: 'mono', text: where || '' }),
    h('td', {}, h('span', { class: `badge ${STATE_CLASS[c.state] || ''}`, 'data-state': c.state, text: c.state, title: c.error || '' })),
    h('td', { class: 'mcp-tools' }, tools),
    h('td', { class: 'row-actions' }, reconnect),
  );
}

function callRow(r) {
  const cls = r.status === 'success' ? 'ok' : r.status === 'blocked' || r.status === 'tool_error' ? 'warn' : 'bad';
  return h(
    'tr',
    { 'data-call': r.id },
    h('td', { text: fmtTime(r.timestamp_ms) }),
    h('td', { class: 'mono', text: `${r.server}-${r.tool}` }),
    h('td', { text: r.server }),
    h('td', { class: 'mono', text: r.virtual_key_id || '—' }),
    h('td', { text: fmtMs(r.latency_ms) }),
    h('td', {}, h('span', { class: `badge ${cls}`, text: r.status, title: r.error || '' })),
  );
}

function table(id, heads, rows) {
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', { class: 'stack', id }, h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col', text: t })))), h('tbody', {}, rows)),
  );
}

export async function render(main, ctx = { alive: () => true }) {
  const draw = async () => {
    const [list, logs] = await Promise.all([api('/api/mcp/clients'), api('/api/mcp-logs?limit=50')]);
    if (!ctx.alive()) return;
    const servers = list.clients.length
      ? table('mcp-servers', ['Server', 'Transport', 'Where', 'State', 'Tools', ''], list.clients.map((c) => serverRow(c, draw)))
      : emptyState('No MCP servers registered. Add them with POST /api/mcp/client or in config.json under "mcp".');
    const calls = logs.logs.length
      ? table('mcp-calls', ['Time', 'Tool', 'Server', 'Virtual key', 'Latency', 'Status'], logs.logs.map(callRow))
      : emptyState('No tool calls yet.');
    clear(
      main,
      pageHeader('MCP', 'MCP servers behind /mcp, their state and tools, and recent tool calls'),
      h('h2', { text: 'Servers' }),
      servers,
      h('h2', { text: 'Recent tool calls' }),
      calls,
    );
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 3000);
  return () => clearInterval(timer);
}
