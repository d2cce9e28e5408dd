// Virtual Keys: the keys apps use instead of provider keys, with their budgets, rate limits and current
// usage (GET /api/governance/virtual-keys), create (the value is shown once), pause, delete, and the
// switch that makes a key mandatory on inference (PUT /api/config).
import { h, clear, api, enc, toast, formDialog, confirmDialog, field, pageHeader, emptyState, fmtUsd, fmtInt, currencyCode } from './lib.js';

const DURATIONS = ['1m', '5m', '1h', '1d', '1w', '1M', '1Q', '1Y'];

function durationSelect(name, value) {
  const s = h('select', { name }, DURATIONS.map((d) => h('option', { value: d, text: d })));
  s.value = value;
  return s;
}

function status(k) {
  if (!k.is_active) return h('span', { class: 'badge warn', text: 'inactive' });
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return h('span', { class: 'badge bad', text: 'expired' });
  return h('span', { class: 'badge ok', text: 'active' });
}

function budgets(k) {
  if (!k.budgets.length) return h('span', { class: 'muted', text: 'none' });
  return k.budgets.map((b) => h('div', { text: `${fmtUsd(b.current_usage)} of ${fmtUsd(b.max_limit)} / ${b.reset_duration}` }));
}

function limits(k) {
  const r = k.rate_limit;
  const out = [];
  if (r && r.request_max_limit != null) out.push(`${fmtInt(r.request_current_usage || 0)} of ${fmtInt(r.request_max_limit)} req / ${r.request_reset_duration}`);
  if (r && r.token_max_limit != null) out.push(`${fmtInt(r.token_current_usage || 0)} of ${fmtInt(r.token_max_limit)} tok / ${r.token_reset_duration}`);
  if (k.max_concurrent_requests != null) out.push(`${k.in_flight_requests} of ${k.max_concurrent_requests} in flight`);
  return out.length ? out.map((t) => h('div', { text: t })) : h('span', { class: 'muted', text: 'none' });
}

async function createKey(teams) {
  return formDialog({
    title: 'New virtual key',
    id: 'vk-dialog',
    submitLabel: 'Create',
    build: () => {
      const team = h('select', { name: 'team_id' }, h('option', { value: '', text: '(none)' }), teams.map((t) => h('option', { value: t.id, text: t.name })));
      return [
        field('Name', h('input', { name: 'name', type: 'text', required: true, autocomplete: 'off' })),
        field('Team', team),
        field(`Budget (${currencyCode()})`, h('input', { name: 'budget', type: 'number', min: '0', step: 'any', placeholder: 'no budget' })),
        field('Budget resets every', durationSelect('budget_reset', '1M')),
        field('Requests per window', h('input', { name: 'requests', type: 'number', min: '1', step: '1', placeholder: 'no limit' })),
        field('Request window', durationSelect('requests_reset', '1m')),
        field('Tokens per window', h('input', { name: 'tokens', type: 'number', min: '1', step: '1', placeholder: 'no limit' })),
        field('Token window', durationSelect('tokens_reset', '1m')),
        field('Max requests in flight', h('input', { name: 'concurrent', type: 'number', min: '1', step: '1', placeholder: 'no limit' })),
        field('Expires', h('input', { name: 'expires', type: 'datetime-local' }), 'Local time; empty: never'),
      ];
    },
    submit: async (form) => {
      const v = (n) => form.elements[n].value.trim();
      const body = { name: v('name') };
      if (v('team_id')) body.team_id = v('team_id');
      if (v('budget')) body.budgets = [{ max_limit: Number(v('budget')), reset_duration: v('budget_reset') }];
      const rl = {};
      if (v('requests')) Object.assign(rl, { request_max_limit: Number(v('requests')), request_reset_duration: v('requests_reset') });
      if (v('tokens')) Object.assign(rl, { token_max_limit: Number(v('tokens')), token_reset_duration: v('tokens_reset') });
      if (Object.keys(rl).length) body.rate_limit = rl;
      if (v('concurrent')) body.max_concurrent_requests = Number(v('concurrent'));
      if (v('expires')) body.expires_at = new Date(v('expires')).toISOString();
      const r = await api('/api/governance/virtual-keys', { method: 'POST', body });
      return r.virtual_key;
    },
  });
}

function showValueOnce(vk) {
  const value = h('input', { type: 'text', readonly: true, value: vk.value, id: 'vk-value', class: 'mono' });
  const copy = h('button', { type: 'button', class: 'btn', text: 'Copy' });
  copy.addEventListener('click', async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(vk.value);
      toast('Copied');
    } catch {
      toast('Select the value and copy it', 'error');
    }
  });
  return formDialog({
    title: `Virtual key "${vk.name}"`,
    id: 'vk-value-dialog',
    submitLabel: 'Done',
    build: () => [
      h('p', { text: 'Store this value now: it is not shown again. Send it as "Authorization: Bearer …" or "x-bf-vk".' }),
      field('Value', value),
      copy,
    ],
    submit: async () => true,
  });
}

export async function render(main) {
  const [list, teams, config] = await Promise.all([
    api('/api/governance/virtual-keys?limit=1000'),
    api('/api/governance/teams'),
    api('/api/config'),
  ]);
  const keys = list.virtual_keys || [];
  const enforce = h('input', { type: 'checkbox', id: 'vk-enforce', checked: !!config.client_config.enforce_auth_on_inference });
  enforce.addEventListener('change', async () => {
    try {
      await api('/api/config', { method: 'PUT', body: { client_config: { enforce_auth_on_inference: enforce.checked } } });
      toast(enforce.checked ? 'Inference now requires a virtual key' : 'Virtual keys are optional on inference');
    } catch (e) {
      enforce.checked = !enforce.checked;
      toast(e.message, 'error');
    }
  });
  const add = h('button', { type: 'button', class: 'btn primary', id: 'vk-new', text: 'New virtual key' });
  add.addEventListener('click', async () => {
    const vk = await createKey(teams.teams || []);
    if (!vk) return;
    await showValueOnce(vk);
    await render(main);
  });
  const rows = keys.map((k) => {
    const toggle = h('button', { type: 'button', class: 'btn small', text: k.is_active ? 'Deactivate' : 'Activate' });
    toggle.addEventListener('click', async () => {
      try {
        await api(`/api/governance/virtual-keys/${enc(k.id)}`, { method: 'PUT', body: { is_active: !k.is_active } });
        await render(main);
      } catch (e) {
        toast(e.message, 'error');
      }
    });
    const del = h('button', { type: 'button', class: 'btn small danger', text: 'Delete' });
    del.addEventListener('click', async () => {
      if (!(await confirmDialog(`Delete virtual key "${k.name}"? Apps using it get 401 from then on.`))) return;
      try {
        await api(`/api/governance/virtual-keys/${enc(k.id)}`, { method: 'DELETE' });
        await render(main);
      } catch (e) {
        toast(e.message, 'error');
      }
    });
    return h(
      'tr',
      { 'data-vk': k.id },
      h('th', { scope: 'row', text: k.name }),
      h('td', { class: 'mono', text: k.value }),
      h('td', { text: k.team_id || k.customer_id || '—' }),
      h('td', {}, status(k)),
      h('td', {}, budgets(k)),
      h('td', {}, limits(k)),
      h('td', { class: 'row-actions' }, toggle, del),
    );
  });
  const table = keys.length
    ? h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'stack', id: 'vk-table' },
          h('thead', {}, h('tr', {}, ['Name', 'Key', 'Team / customer', 'Status', 'Budget used', 'Rate limits', ''].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, rows),
        ),
      )
    : emptyState('No virtual keys yet. Create one to give an app its own budget and limits.');
  clear(
    main,
    pageHeader('Virtual Keys', 'Keys for apps and teams, with budgets, rate limits and usage', add),
    h('div', { class: 'field check' }, enforce, h('label', { for: 'vk-enforce', text: 'Require a virtual key on every inference request' })),
    table,
  );
}
