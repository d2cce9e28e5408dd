// Logs: the request log, filterable and paginated (/api/logs), and one request in detail
// (/api/logs/{id}) with its attempt trail, timings, tokens, cost and content.
import {
  h, clear, api, enc, meta, fmtMs, fmtInt, fmtUsd, fmtTime, pageHeader, emptyState, statusClass, splitList,
} from './lib.js';

const FILTERS = ['providers', 'models', 'status', 'start_time', 'end_time', 'content_search', 'sort_by', 'order', 'limit', 'offset'];

export async function render(main, ctx) {
  if (!meta.logs_enabled) {
    clear(main, pageHeader('Logs'), emptyState('Request logging is off on this gateway (started with --no-request-logs).'));
    return undefined;
  }
  if (ctx.rest[0]) return renderDetail(main, ctx.rest[0]);
  return renderList(main, ctx);
}

/** datetime-local value (local time) ⇄ RFC 3339 (UTC). */
function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().slice(0, 16);
}

function fromLocalInput(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

async function renderList(main, ctx) {
  const p = ctx.params;
  const q = {};
  for (const k of FILTERS) if (p.get(k)) q[k] = p.get(k);
  const limit = Number(q.limit) || 50;
  const offset = Number(q.offset) || 0;

  let providers = [];
  try {
    providers = (await api('/api/providers')).providers.map((x) => x.name);
  } catch {
    /* the filter still works as free text */
  }
  const selected = new Set(splitList(q.providers));
  const provSel = h(
    'select',
    { name: 'providers', id: 'f-provider' },
    h('option', { value: '', text: 'All providers' }),
    [...new Set([...providers, ...selected])].sort().map((n) => h('option', { value: n, text: n, selected: selected.has(n) })),
  );
  const form = h(
    'form',
    { class: 'filters card', role: 'search', 'aria-label': 'Filter logs' },
    h(
      'div',
      { class: 'filter-grid' },
      field2('Provider', provSel),
      field2('Model', h('input', { name: 'models', id: 'f-model', type: 'text', value: q.models || '', placeholder: 'any', autocomplete: 'off', spellcheck: 'false' })),
      field2(
        'Status',
        h(
          'select',
          { name: 'status', id: 'f-status' },
          [['', 'Any'], ['success', 'Success'], ['error', 'Error'], ['400', '400'], ['401', '401'], ['404', '404'], ['429', '429'], ['500', '500'], ['502', '502'], ['503', '503'], ['504', '504']].map(([v, t]) =>
            h('option', { value: v, text: t, selected: (q.status || '') === v }),
          ),
        ),
      ),
      field2('From', h('input', { name: 'start_time', id: 'f-from', type: 'datetime-local', value: toLocalInput(q.start_time) })),
      field2('To', h('input', { name: 'end_time', id: 'f-to', type: 'datetime-local', value: toLocalInput(q.end_time) })),
      field2('Search content', h('input', { name: 'content_search', id: 'f-search', type: 'search', value: q.content_search || '', placeholder: 'text in request or answer', autocomplete: 'off' })),
      field2(
        'Sort',
        h(
          'select',
          { name: 'sort', id: 'f-sort' },
          [['timestamp:desc', 'Newest first'], ['timestamp:asc', 'Oldest first'], ['latency:desc', 'Slowest first'], ['tokens:desc', 'Most tokens'], ['cost:desc', 'Most expensive']].map(([v, t]) =>
            h('option', { value: v, text: t, selected: `${q.sort_by || 'timestamp'}:${q.order || 'desc'}` === v }),
          ),
        ),
      ),
    ),
    h(
      'div',
      { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn primary', id: 'f-apply' }, 'Apply filters'),
      h('button', { type: 'button', class: 'btn', id: 'f-reset', onclick: () => go({}) }, 'Reset'),
      h('button', { type: 'button', class: 'btn', id: 'f-refresh', onclick: () => load() }, 'Refresh'),
    ),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const el = form.elements;
    const [sortBy, order] = el.sort.value.split(':');
    go({
      providers: el.providers.value,
      models: splitList(el.models.value).join(','),
      status: el.status.value,
      start_time: fromLocalInput(el.start_time.value),
      end_time: fromLocalInput(el.end_time.value),
      content_search: el.content_search.value.trim(),
      sort_by: sortBy === 'timestamp' ? '' : sortBy,
      order: order === 'desc' ? '' : order,
      limit: limit === 50 ? '' : String(limit),
    });
  });

  const results = h('div', { class: 'results', id: 'log-results' });
  clear(main, pageHeader('Logs', 'Every inference call, newest first. Select a row for its trail, timings and content.'), form, results);

  function go(next) {
    const s = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v) s.set(k, v);
    const target = `#/logs${s.toString() ? `?${s}` : ''}`;
    if (location.hash === target) load();
    else location.hash = target;
  }

  async function load() {
    const s = new URLSearchParams();
    for (const k of FILTERS) if (q[k]) s.set(k, q[k]);
    s.set('limit', String(limit));
    s.set('offset', String(offset));
    let page;
    try {
      page = await api(`/api/logs?${s}`);
    } catch (e) {
      clear(results, h('p', { class: 'form-error', role: 'alert', text: e.message }));
      return;
    }
    if (!ctx.alive()) return;
    const rows = page.logs.map((r) => logRow(r));
    const from = page.total ? offset + 1 : 0;
    const to = offset + page.logs.length;
    const pageTo = (o) => go({ ...q, offset: o > 0 ? String(o) : '' });
    clear(
      results,
      page.logs.length
        ? h(
          'div',
          { class: 'table-wrap card flush' },
          h(
            'table',
            { class: 'logs stack', id: 'log-table' },
            h('caption', { class: 'sr-only', text: 'Request log' }),
            h('thead', {}, h('tr', {}, ['Time', 'Model', 'Served by', 'Status', 'Latency', 'Tokens', 'Cost', 'Attempts'].map((t) => h('th', { scope: 'col', text: t })))),
            h('tbody', {}, rows),
          ),
        )
        : emptyState(Object.keys(q).length ? 'No requests match these filters.' : 'No requests logged yet.'),
      h(
        'nav',
        { class: 'pager', 'aria-label': 'Pages' },
        h('span', { class: 'muted', id: 'log-count', text: `${fmtInt(from)}–${fmtInt(to)} of ${fmtInt(page.total)}` }),
        h('button', { type: 'button', class: 'btn', disabled: offset === 0, onclick: () => pageTo(Math.max(0, offset - limit)) }, '← Newer'),
        h('button', { type: 'button', class: 'btn', disabled: to >= page.total, onclick: () => pageTo(offset + limit) }, 'Older →'),
        h(
          'label',
          { class: 'inline' },
          'Per page ',
          h(
            'select',
            { onchange: (ev) => go({ ...q, offset: '', limit: ev.target.value === '50' ? '' : ev.target.value }) },
            ['25', '50', '100', '250'].map((n) => h('option', { value: n, text: n, selected: String(limit) === n })),
          ),
        ),
      ),
    );
    results.dataset.loaded = String(Date.now());
  }
  await load();
  return undefined;
}

function field2(label, input) {
  return h('div', { class: 'field' }, h('label', { for: input.id, text: label }), input);
}

function cost(r) {
  if (!r.cost_known) return h('span', { class: 'muted', title: 'no price known for this model at this endpoint', text: 'unknown' });
  return fmtUsd(r.cost_usd);
}

function logRow(r) {
  const href = `#/logs/${enc(r.id)}`;
  const served = r.provider ? `${r.provider}/${r.model || '?'}` : '–';
  const tokens = r.input_tokens !== null || r.output_tokens !== null ? `${fmtInt(r.input_tokens ?? 0)} / ${fmtInt(r.output_tokens ?? 0)}${r.usage_estimated ? ' (est.)' : ''}` : '–';
  const tr = h(
    'tr',
    { class: 'clickable', dataset: { logId: r.id } },
    h('td', { 'data-label': 'Time' }, h('a', { href, class: 'row-link', text: fmtTime(r.timestamp_ms) })),
    h('td', { 'data-label': 'Model' }, h('code', { text: r.model_requested })),
    h('td', { 'data-label': 'Served by', class: 'served' }, served, r.key_name ? h('small', { class: 'muted sub', text: `key ${r.key_name}` }) : null),
    h('td', { 'data-label': 'Status', class: 'nowrap' }, h('span', { class: `badge ${statusClass(r.status)}`, text: String(r.status) }), r.cache_hit ? ' ' : null, r.cache_hit ? h('span', { class: 'badge ok cache-hit', title: 'answered from the response cache: no upstream call, no cost', text: 'cache hit' }) : null, r.error_type ? h('small', { class: 'muted sub', text: r.error_type }) : null),
    h('td', { 'data-label': 'Latency', class: 'num', text: fmtMs(r.latency_ms) }),
    h('td', { 'data-label': 'Tokens', class: 'num', text: tokens }),
    h('td', { 'data-label': 'Cost', class: 'num' }, cost(r)),
    h('td', { 'data-label': 'Attempts', class: 'num' }, String(r.attempts), r.fallback_index ? ' ' : null, r.fallback_index ? h('span', { class: 'badge warn', title: 'served by a fallback', text: `fallback ${r.fallback_index}` }) : null),
  );
  // The whole row is a target for the mouse; the link in the first cell is the keyboard target.
  tr.addEventListener('click', (ev) => {
    if (ev.target.closest('a')) return;
    location.hash = href;
  });
  return tr;
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

async function renderDetail(main, id) {
  let r;
  try {
    r = await api(`/api/logs/${enc(id)}`);
  } catch (e) {
    clear(main, h('p', {}, h('a', { href: '#/logs', text: '← All logs' })), h('p', { class: 'form-error', role: 'alert', text: e.message }));
    return undefined;
  }
  let trail = [];
  try {
    trail = r.trail ? JSON.parse(r.trail) : [];
  } catch {
    trail = [];
  }
  const dl = (pairs) => h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => h('div', { class: 'fact' }, h('dt', { text: k }), h('dd', {}, v ?? '–'))));
  const timings = [
    ['Total', r.latency_ms],
    ['Upstream', r.upstream_latency_ms],
    ['Gateway overhead', r.overhead_ms],
    ['Time to first token', r.ttft_ms],
  ].filter(([, v]) => v !== null && v !== undefined);
  const maxT = Math.max(1, ...timings.map(([, v]) => v));
  const timingBars = h(
    'ul',
    { class: 'share-bars timings' },
    timings.map(([k, v]) =>
      h('li', {}, h('span', { class: 'share-name', text: k }), h('span', { class: 'share-track', 'aria-hidden': 'true' }, h('span', { class: 'share-fill', dataset: { pct: ((v / maxT) * 100).toFixed(1) } })), h('span', { class: 'share-value', text: fmtMs(v) })),
    ),
  );
  const content = (title, text, cls) =>
    h('section', { class: `card content ${cls}` }, h('h2', { text: title }), text ? h('pre', { class: 'code', tabindex: 0, text: pretty(text) }) : h('p', { class: 'muted', text: 'Not logged. Content is stored only with --log-content or the provider’s “log content” switch.' }));
  clear(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/logs', id: 'back-to-logs', text: '← All logs' })),
    h(
      'div',
      { class: 'page-head' },
      h(
        'div',
        {},
        h('h1', {}, h('code', { text: r.model_requested }), ' ', h('span', { class: `badge ${statusClass(r.status)}`, id: 'detail-status', text: String(r.status) })),
        h('p', { class: 'muted', text: `${fmtTime(r.timestamp_ms)} · ${r.route} · ${r.stream ? 'stream' : 'JSON'}${r.cache_hit ? ' · cache hit' : ''} · id ${r.id}` }),
      ),
    ),
    r.error_message ? h('p', { class: 'form-error', role: 'alert' }, h('strong', { text: `${r.error_type || 'error'}: ` }), r.error_message) : null,
    h(
      'div',
      { class: 'detail-grid' },
      h(
        'section',
        { class: 'card', id: 'detail-summary' },
        h('h2', { text: 'Summary' }),
        dl([
          ['Requested model', h('code', { text: r.model_requested })],
          ['Served by', r.provider ? h('span', { id: 'detail-served' }, h('strong', { text: r.provider }), ` / ${r.model || '?'}`) : '–'],
          ['Model that answered', r.served_model ? h('code', { id: 'detail-served-model', text: r.served_model }) : '–'],
          ['Key', r.key_name || '–'],
          ['Attempts', `${r.attempts}${r.fallback_index ? ` (served by fallback ${r.fallback_index})` : ''}`],
          ['Request type', r.request_type],
          ['User agent', r.user_agent || '–'],
        ]),
      ),
      h('section', { class: 'card', id: 'detail-timings' }, h('h2', { text: 'Timings' }), timings.length ? timingBars : h('p', { class: 'muted', text: '–' })),
      h(
        'section',
        { class: 'card', id: 'detail-usage' },
        h('h2', { text: 'Tokens and cost' }),
        dl([
          ['Input tokens', fmtInt(r.input_tokens)],
          ['Output tokens', fmtInt(r.output_tokens)],
          ['Cached tokens', fmtInt(r.cached_tokens)],
          ['Token counts', r.usage_estimated ? h('span', { class: 'badge warn', id: 'detail-usage-estimated', title: 'request bytes / 4 for the input, the answer text bytes / 4 for the output', text: 'estimated: the upstream reported no usage' }) : 'reported by the upstream'],
          ['Cost', r.cost_known ? fmtUsd(r.cost_usd) : h('span', { class: 'muted', id: 'detail-cost', text: 'unknown price (not counted in cost totals)' })],
        ]),
      ),
    ),
    h(
      'section',
      { class: 'card', id: 'detail-trail' },
      h('h2', { text: 'Attempts and fallbacks' }),
      trail.length
        ? h(
          'ol',
          { class: 'trail big' },
          trail.map((a) => {
            const ok = /^2\d\d$/.test(String(a.outcome));
            return h(
              'li',
              { class: ok ? 'ok' : 'bad' },
              h('code', { text: `${a.provider}/${a.model}` }),
              a.key ? h('span', { class: 'muted', text: ` key ${a.key}` }) : null,
              ' → ',
              h('strong', { text: String(a.outcome) }),
              h('span', { class: 'muted', text: ` · ${fmtMs(a.latency_ms)}` }),
            );
          }),
        )
        : h('p', { class: 'muted', text: 'No upstream attempt was made (the request was rejected before routing).' }),
    ),
    h('div', { class: 'detail-grid two' }, content('Request', r.request_body, 'req'), content('Response', r.response_body, 'resp')),
  );
  for (const el of main.querySelectorAll('[data-pct]')) el.style.width = `${el.dataset.pct}%`;
  document.title = `Log ${r.model_requested} · Switchyard`;
  return undefined;
}
