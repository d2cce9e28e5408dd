// Guardrails: PII, secrets and custom patterns checked on requests and answers, and webhooks
// (GET/POST /api/guardrails, PUT /api/guardrails/{id}), with a test box that runs a text through one
// guardrail (POST /api/guardrails/{id}/test) and shows what it would do.
import { h, clear, api, enc, toast, formDialog, confirmDialog, field, pageHeader, emptyState, splitList } from './lib.js';

const ENTITIES = ['email', 'phone', 'iban', 'credit_card'];

function select(name, options, value) {
  const s = h('select', { name }, options.map((o) => h('option', { value: o, text: o })));
  s.value = value;
  return s;
}

function describe(g) {
  if (g.type === 'pii') return g.entities.join(', ');
  if (g.type === 'regex') return g.patterns.join('  ');
  if (g.type === 'webhook') return `${g.url} (${g.timeout_ms} ms, on error: ${g.on_error})`;
  return 'AWS keys, PEM private keys, GitHub tokens, sk- keys';
}

function scopeText(g) {
  const parts = [];
  if (g.scope.virtual_key_ids.length) parts.push(`keys: ${g.scope.virtual_key_ids.join(', ')}`);
  if (g.scope.providers.length) parts.push(`providers: ${g.scope.providers.join(', ')}`);
  return parts.join('; ') || 'everywhere';
}

/** The create / edit form; `g` is the guardrail being edited, or null. */
function editDialog(g) {
  return formDialog({
    title: g ? `Edit guardrail "${g.name}"` : 'New guardrail',
    id: 'gr-dialog',
    submitLabel: g ? 'Save' : 'Create',
    build: () => {
      const entities = ENTITIES.map((e) =>
        field(e, h('input', { type: 'checkbox', name: `entity-${e}`, checked: g ? g.entities.includes(e) : e === 'email' })),
      );
      return [
        field('Name', h('input', { name: 'name', type: 'text', required: true, autocomplete: 'off', value: g ? g.name : '' })),
        field('Type', select('type', ['pii', 'secrets', 'regex', 'webhook'], g ? g.type : 'pii')),
        field('Stage', select('stage', ['request', 'response', 'both'], g ? g.stage : 'request')),
        field('Action', select('action', ['block', 'redact', 'log'], g ? g.action : 'block')),
        h('fieldset', { class: 'field' }, h('legend', { text: 'Entities (pii)' }), entities),
        field('Patterns (regex)', h('input', { name: 'patterns', type: 'text', value: g ? g.patterns.join(', ') : '' }), 'Comma separated'),
        field('Webhook URL', h('input', { name: 'url', type: 'url', value: g && g.url ? g.url : '' })),
        field('Timeout (ms)', h('input', { name: 'timeout_ms', type: 'number', min: '1', value: g ? g.timeout_ms : 2000 })),
        field('On webhook error', select('on_error', ['block', 'allow'], g ? g.on_error : 'block')),
        field('Only for virtual key ids', h('input', { name: 'vks', type: 'text', value: g ? g.scope.virtual_key_ids.join(', ') : '' }), 'Comma separated; empty: all'),
        field('Only for providers', h('input', { name: 'providers', type: 'text', value: g ? g.scope.providers.join(', ') : '' }), 'Comma separated; empty: all'),
        field('Enabled', h('input', { type: 'checkbox', name: 'enabled', checked: g ? g.enabled : true })),
      ];
    },
    submit: async (form) => {
      const v = (n) => form.elements[n].value.trim();
      const type = v('type');
      const body = {
        name: v('name'),
        type,
        stage: v('stage'),
        action: v('action'),
        enabled: form.elements.enabled.checked,
        scope: { virtual_key_ids: splitList(v('vks')), providers: splitList(v('providers')) },
      };
      if (type === 'pii') body.entities = ENTITIES.filter((e) => form.elements[`entity-${e}`].checked);
      if (type === 'regex') body.patterns = splitList(v('patterns'));
      if (type === 'webhook') Object.assign(body, { url: v('url'), timeout_ms: Number(v('timeout_ms')), on_error: v('on_error') });
      const r = g
        ? await api(`/api/guardrails/${enc(g.id)}`, { method: 'PUT', body })
        : await api('/api/guardrails', { method: 'POST', body });
      return r.guardrail;
    },
  });
}

function testBox(list) {
  const which = h('select', { id: 'gr-test-which' }, list.map((g) => h('option', { value: g.id, text: g.name })));
  const text = h('textarea', { id: 'gr-test-text', rows: 3, placeholder: 'A text to check, e.g. an e-mail address or an IBAN' });
  const out = h('output', { id: 'gr-test-result', for: 'gr-test-text' });
  const run = h('button', { type: 'button', class: 'btn', id: 'gr-test-run', text: 'Test' });
  run.addEventListener('click', async () => {
    try {
      const r = await api(`/api/guardrails/${enc(which.value)}/test`, { method: 'POST', body: { text: text.value } });
      const detail = r.output != null ? ` → ${r.output}` : r.reason ? `: ${r.reason}` : '';
      out.textContent = `${r.decision}${detail}`;
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  return h('section', { class: 'card', 'aria-label': 'Test a text' }, h('h2', { text: 'Test a text' }), field('Guardrail', which), field('Text', text), run, h('p', {}, out));
}

export async function render(main) {
  const { guardrails: list } = await api('/api/guardrails');
  const add = h('button', { type: 'button', class: 'btn primary', id: 'gr-new', text: 'New guardrail' });
  add.addEventListener('click', async () => {
    if (await editDialog(null)) await render(main);
  });
  const rows = list.map((g) => {
    const edit = h('button', { type: 'button', class: 'btn small gr-edit', text: 'Edit' });
    edit.addEventListener('click', async () => {
      if (await editDialog(g)) await render(main);
    });
    const del = h('button', { type: 'button', class: 'btn small danger', text: 'Delete' });
    del.addEventListener('click', async () => {
      if (!(await confirmDialog(`Delete guardrail "${g.name}"?`))) return;
      try {
        await api(`/api/guardrails/${enc(g.id)}`, { method: 'DELETE' });
        await render(main);
      } catch (e) {
        toast(e.message, 'error');
      }
    });
    return h(
      'tr',
      { 'data-guardrail': g.id },
      h('th', { scope: 'row', text: g.name }),
      h('td', { text: g.type }),
      h('td', { class: 'mono', text: describe(g) }),
      h('td', { text: g.stage }),
      h('td', { text: g.action }),
      h('td', { text: scopeText(g) }),
      h('td', {}, h('span', { class: `badge ${g.enabled ? 'ok' : 'warn'}`, text: g.enabled ? 'on' : 'off' })),
      h('td', { class: 'row-actions' }, edit, del),
    );
  });
  const table = list.length
    ? h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'stack', id: 'gr-table' },
          h('thead', {}, h('tr', {}, ['Name', 'Type', 'Checks', 'Stage', 'Action', 'Scope', 'State', ''].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, rows),
        ),
      )
    : emptyState('No guardrails yet. Add one to keep e-mail addresses, IBANs or keys away from models.');
  clear(main, pageHeader('Guardrails', 'PII, secrets and custom rules on requests and answers', add), table, list.length ? testBox(list) : null);
}
