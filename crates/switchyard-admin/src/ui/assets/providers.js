// Model Providers: providers and their keys (add, edit, delete, enable, check), network config,
// fallbacks, health, and a form that sends a real chat request through the gateway.
import {
  h, clear, api, enc, meta, toast, formDialog, confirmDialog, field, pageHeader, emptyState,
  healthBadge, splitList, fmtMs, fmtAgo, statusClass,
} from './lib.js';

let providers = [];

export async function render(main, ctx) {
  const list = h('div', { class: 'provider-list', id: 'provider-list' });
  const test = testPanel(ctx.params);
  clear(
    main,
    pageHeader(
      'Model Providers',
      'Upstream providers, their keys and how requests reach them. Key values are always shown redacted.',
      h('button', { type: 'button', class: 'btn primary', id: 'add-provider', onclick: () => providerDialog(null, reload) }, '+ Add provider'),
      h('button', { type: 'button', class: 'btn', onclick: () => reload(), 'aria-label': 'Refresh providers' }, 'Refresh'),
    ),
    list,
    test.el,
  );
  async function reload() {
    const data = await api('/api/providers');
    providers = data.providers || [];
    clear(list, providers.length ? providers.map((p) => providerCard(p, reload, test)) : emptyState(
      'No providers yet. Add one to start routing requests: a built-in provider such as openai (point its base URL at your dedicated endpoint), or a custom OpenAI-compatible one.',
    ));
    test.suggest(providers);
    list.dataset.loaded = String(Date.now());
  }
  await reload();
}

function wireOf(p) {
  const c = p.custom_provider_config;
  if (c) return c.base_provider_type;
  const b = meta.builtins.find((x) => x.name === p.name);
  return b ? b.wire : 'openai';
}

// Provider-specific key settings (Bifrost's shape), edited as JSON; credentials come back redacted and
// are kept when sent back unchanged.
const KEY_SETTINGS = {
  azure: {
    field: 'azure_key_config',
    label: 'Azure settings (JSON)',
    template: { endpoint: 'https://my-resource.openai.azure.com', deployments: {}, api_version: '2024-10-21' },
    hint: 'endpoint, deployments (model → deployment name), api_version.',
  },
  bedrock: {
    field: 'bedrock_key_config',
    label: 'AWS settings (JSON)',
    template: { access_key: 'env.AWS_ACCESS_KEY_ID', secret_key: 'env.AWS_SECRET_ACCESS_KEY', region: 'us-east-1', deployments: {} },
    hint: 'access_key, secret_key, session_token (env.VAR references welcome), region, deployments (model → model id or ARN). Leave the API key empty to sign with these.',
  },
};

function kindLabel(p) {
  const c = p.custom_provider_config;
  if (c) return `custom · ${c.base_provider_type}${c.is_key_less ? ' · key-less' : ''}`;
  const b = meta.builtins.find((x) => x.name === p.name);
  return `built-in · ${b ? b.wire : 'openai'}`;
}

function providerCard(p, reload, test) {
  const nc = p.network_config;
  const titleId = `prov-${p.name}`;
  const facts = h(
    'dl',
    { class: 'facts' },
    fact('Base URL', h('code', { class: 'base-url', text: nc.base_url || '(none)' })),
    fact(
      'Timeouts',
      `request ${nc.default_request_timeout_in_seconds} s${nc.first_byte_timeout_in_seconds ? ` · first byte ${nc.first_byte_timeout_in_seconds} s` : ''} · stream idle ${nc.stream_idle_timeout_in_seconds} s`,
    ),
    fact('Retries', `${nc.max_retries} (backoff ${fmtMs(nc.retry_backoff_initial)} → ${fmtMs(nc.retry_backoff_max)})`),
    fact(
      'Fallbacks',
      p.fallbacks.length
        ? h('span', { class: 'chain' }, [p.name, ...p.fallbacks].flatMap((f, i) => (i ? [h('span', { class: 'arrow', 'aria-hidden': 'true', text: '→' }), h('code', { text: f })] : [h('code', { text: f })])))
        : h('span', { class: 'muted', text: 'none' }),
    ),
    fact('Capacity', `${p.concurrency_and_buffer_size.concurrency} concurrent · ${p.concurrency_and_buffer_size.buffer_size} waiting`),
    fact('Circuit breaker', `eject after ${p.circuit_breaker.failure_threshold} failures for ${p.circuit_breaker.cooldown_in_seconds} s`),
    Object.keys(nc.extra_headers || {}).length ? fact('Extra headers', Object.keys(nc.extra_headers).join(', ')) : null,
    fact('Content logging', p.store_raw_request_response ? 'on for this provider' : 'off (unless --log-content)'),
    p.case_insensitive_model_ids ? fact('Model ids', 'matched ignoring case') : null,
    p.model_discovery ? fact('Discovered models', discovered(p.discovered_models)) : null,
  );
  const provHealth = p.health && p.health.state !== 'healthy' ? healthBadge(p.health) : null;
  const lastErr = p.health && p.health.last_error ? lastError(p.health) : null;
  const firstModel = p.keys.flatMap((k) => k.models).find((m) => m !== '*') || '';
  return h(
    'section',
    { class: 'card provider', 'aria-labelledby': titleId, dataset: { provider: p.name } },
    h(
      'div',
      { class: 'card-head' },
      h('h2', { id: titleId }, p.name, ' ', h('span', { class: 'tag', text: kindLabel(p) }), ' ', provHealth),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'btn small', 'aria-label': `Test a model of ${p.name}`, onclick: () => test.prefill(`${p.name}/${firstModel}`) }, 'Test'),
        h('button', { type: 'button', class: 'btn small', 'aria-label': `Edit provider ${p.name}`, dataset: { action: 'edit-provider' }, onclick: () => providerDialog(p, reload) }, 'Edit'),
        h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Delete provider ${p.name}`, onclick: () => deleteProvider(p, reload) }, 'Delete'),
      ),
    ),
    facts,
    lastErr ? h('p', { class: 'last-error' }, 'Provider: ', lastErr) : null,
    h(
      'div',
      { class: 'keys-head' },
      h('h3', { text: `Keys (${p.keys.length})` }),
      h('button', { type: 'button', class: 'btn small', 'aria-label': `Add key to ${p.name}`, dataset: { action: 'add-key' }, onclick: () => keyDialog(p, null, reload) }, '+ Add key'),
    ),
    p.keys.length ? keyTable(p, reload) : h('p', { class: 'warn', text: 'No keys: requests cannot use this provider until a key is added.' }),
  );
}

// The provider's last /v1/models read (model_discovery): the models, when, or why it failed (then
// routing goes by the keys alone).
function discovered(d) {
  if (!d) return h('span', { class: 'muted', text: 'not read yet' });
  const when = new Date(d.read_at_ms).toLocaleString();
  if (d.error) return h('span', { class: 'discovered warn', text: `read failed at ${when}: ${d.error} (routing by keys)` });
  if (!d.models.length) return h('span', { class: 'discovered muted', text: `empty at ${when} (provisioning? routing by keys)` });
  return h('span', { class: 'discovered' }, h('code', { text: d.models.join(', ') }), h('small', { class: 'muted', text: ` read ${when}` }));
}

function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', { text: label }), h('dd', {}, value));
}

function lastError(health) {
  const age = health.last_error_age_ms !== undefined ? ` (${fmtAgo(health.last_error_age_ms)})` : '';
  return h('span', { class: 'err-text', text: `last error${age}: ${health.last_error}` });
}

function modelChips(models, empty = 'none') {
  if (!models.length) return h('span', { class: 'muted', text: empty });
  return h('span', { class: 'chips' }, models.map((m) => h('code', { class: m === '*' ? 'chip wild' : 'chip', title: m === '*' ? 'every model' : undefined, text: m })));
}

function keyTable(p, reload) {
  const rows = p.keys.map((k) => {
    const result = h('span', { class: 'check-result', 'aria-live': 'polite' });
    const toggle = h('input', {
      type: 'checkbox',
      class: 'switch',
      checked: k.enabled,
      'aria-label': `Enabled: ${k.name}`,
      onchange: async (ev) => {
        ev.target.disabled = true;
        try {
          await api(`/api/providers/${enc(p.name)}/keys/${enc(k.id)}`, { method: 'PUT', body: { enabled: ev.target.checked } });
          toast(`Key ${k.name} ${ev.target.checked ? 'enabled' : 'disabled'}`);
          await reload();
        } catch (e) {
          toast(e.message, 'error');
          ev.target.checked = !ev.target.checked;
          ev.target.disabled = false;
        }
      },
    });
    const health = k.health || {};
    const state = h(
      'div',
      { class: 'key-state' },
      healthBadge(health, { enabled: k.enabled, status: k.status }),
      k.status_reason ? h('small', { class: 'err-text', text: k.status_reason }) : null,
      health.consecutive_failures ? h('small', { class: 'muted', text: `${health.consecutive_failures} consecutive failure${health.consecutive_failures > 1 ? 's' : ''}` }) : null,
      health.last_error ? h('small', {}, lastError(health)) : null,
      result,
    );
    return h(
      'tr',
      { dataset: { keyId: k.id, keyName: k.name } },
      h('th', { scope: 'row', 'data-label': 'Key', text: k.name }),
      h('td', { 'data-label': 'Value' }, h('code', { class: 'secret', text: k.value })),
      h('td', { 'data-label': 'Models', class: 'models' }, modelChips(k.models)),
      h('td', { 'data-label': 'Blacklisted' }, modelChips(k.blacklisted_models, '–')),
      h('td', { 'data-label': 'Weight', class: 'num weight', text: String(k.weight) }),
      h('td', { 'data-label': 'Enabled' }, toggle),
      h('td', { 'data-label': 'State' }, state),
      h(
        'td',
        { 'data-label': 'Actions', class: 'row-actions' },
        h('button', { type: 'button', class: 'btn small', dataset: { action: 'check' }, 'aria-label': `Check key ${k.name}`, onclick: (ev) => checkKey(p, k, result, ev.currentTarget) }, 'Check'),
        h('button', { type: 'button', class: 'btn small', dataset: { action: 'edit-key' }, 'aria-label': `Edit key ${k.name}`, onclick: () => keyDialog(p, k, reload) }, 'Edit'),
        h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Delete key ${k.name}`, onclick: () => deleteKey(p, k, reload) }, 'Delete'),
      ),
    );
  });
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'keys stack' },
      h('caption', { class: 'sr-only', text: `Keys of ${p.name}` }),
      h('thead', {}, h('tr', {}, ['Key', 'Value', 'Models', 'Blacklisted', 'Weight', 'Enabled', 'State', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, rows),
    ),
  );
}

async function checkKey(p, k, out, btn) {
  btn.disabled = true;
  out.className = 'check-result';
  out.textContent = 'checking…';
  try {
    const r = await api(`/api/providers/${enc(p.name)}/keys/${enc(k.id)}/check`, { method: 'POST', body: {} });
    const icon = r.ok === true ? '✔ ' : r.ok === false ? '✘ ' : '';
    out.textContent = `${icon}${r.message || ''}${r.latency_ms !== undefined ? ` (${r.latency_ms} ms)` : ''}`;
    out.className = `check-result ${r.ok === true ? 'ok' : r.ok === false ? 'bad' : 'muted'}`;
  } catch (e) {
    out.textContent = `✘ ${e.message}`;
    out.className = 'check-result bad';
  } finally {
    btn.disabled = false;
  }
}

async function deleteProvider(p, reload) {
  if (!(await confirmDialog(`Delete provider "${p.name}" and its ${p.keys.length} key(s)? Requests will no longer be routed to it.`))) return;
  try {
    await api(`/api/providers/${enc(p.name)}`, { method: 'DELETE' });
    toast(`Provider ${p.name} deleted`);
  } catch (e) {
    toast(e.message, 'error');
  }
  await reload();
}

async function deleteKey(p, k, reload) {
  if (!(await confirmDialog(`Delete key "${k.name}" of ${p.name}?`))) return;
  try {
    await api(`/api/providers/${enc(p.name)}/keys/${enc(k.id)}`, { method: 'DELETE' });
    toast(`Key ${k.name} deleted`);
  } catch (e) {
    toast(e.message, 'error');
  }
  await reload();
}

// --- provider form ---

function num(name, value, attrs = {}) {
  return h('input', { type: 'number', name, value: value ?? '', min: 0, step: 1, inputmode: 'numeric', ...attrs });
}

function intOrNull(form, name) {
  const v = form.elements[name].value.trim();
  if (v === '') return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${form.elements[name].dataset.label || name} must be a whole number ≥ 0`);
  return n;
}

function parseHeaders(text) {
  const out = {};
  for (const line of String(text).split('\n').map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`extra header "${line}" is not "Name: value"`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

function providerDialog(p, reload) {
  const editing = !!p;
  const nc = p ? p.network_config : {};
  const custom = p ? p.custom_provider_config : null;
  const configured = new Set(providers.map((x) => x.name));
  return formDialog({
    id: 'provider-dialog',
    title: editing ? `Edit provider ${p.name}` : 'Add provider',
    submitLabel: editing ? 'Save' : 'Add provider',
    build(form) {
      const parts = [];
      if (!editing) {
        const kind = h(
          'fieldset',
          { class: 'radios' },
          h('legend', { text: 'Kind' }),
          h('label', {}, h('input', { type: 'radio', name: 'kind', value: 'builtin', checked: true }), ' Built-in provider'),
          h('label', {}, h('input', { type: 'radio', name: 'kind', value: 'custom' }), ' Custom provider (e.g. mittwald AI Hosting, vLLM)'),
        );
        const builtinSel = h(
          'select',
          { name: 'builtin' },
          meta.builtins.map((b) => h('option', { value: b.name, disabled: configured.has(b.name), text: `${b.name} (${b.wire})${configured.has(b.name) ? ' – already added' : ''}` })),
        );
        const firstFree = meta.builtins.find((b) => !configured.has(b.name));
        if (firstFree) builtinSel.value = firstFree.name;
        const nameIn = h('input', { name: 'name', type: 'text', pattern: '[A-Za-z0-9_.\\-]{1,64}', autocomplete: 'off', spellcheck: 'false', placeholder: 'mittwald-shared' });
        const baseType = h('select', { name: 'base_provider_type' }, meta.base_types.map((t) => h('option', { value: t, text: t })));
        const keyless = h('input', { type: 'checkbox', name: 'is_key_less' });
        const builtinBox = h('div', { class: 'kind-builtin' }, field('Provider', builtinSel));
        const customBox = h(
          'div',
          { class: 'kind-custom', hidden: true },
          field('Name', nameIn, 'Letters, digits, "-", "_" and "."; used as the model prefix (name/model).'),
          field('Base provider type', baseType, 'The API the upstream speaks; OpenAI-compatible for mittwald, vLLM, Ollama.'),
          field('Key-less (no API key needed)', keyless),
        );
        const sync = () => {
          const isCustom = form.elements.kind.value === 'custom';
          builtinBox.hidden = isCustom;
          customBox.hidden = !isCustom;
          nameIn.required = isCustom;
          const b = meta.builtins.find((x) => x.name === builtinSel.value);
          form.elements.base_url.placeholder = isCustom ? 'https://llm.aihosting.mittwald.de/v1' : (b && b.default_base_url) || 'https://…';
          form.elements.base_url.required = isCustom || !(b && b.default_base_url);
        };
        kind.addEventListener('change', sync);
        builtinSel.addEventListener('change', sync);
        queueMicrotask(sync);
        parts.push(kind, builtinBox, customBox);
      }
      const baseUrl = h('input', { name: 'base_url', type: 'url', value: nc.base_url || '', autocomplete: 'off', spellcheck: 'false' });
      parts.push(field('Base URL', baseUrl, editing ? 'Where requests go; with or without /v1.' : 'Leave empty for a built-in provider’s default endpoint; with or without /v1.'));
      parts.push(
        h(
          'fieldset',
          { class: 'grid3' },
          h('legend', { text: 'Network' }),
          field('Request timeout (s)', num('timeout', nc.default_request_timeout_in_seconds ?? 600, { 'data-label': 'Request timeout', min: 1 })),
          field('First byte timeout (s)', num('first_byte', nc.first_byte_timeout_in_seconds ?? '', { 'data-label': 'First byte timeout', placeholder: 'none' })),
          field('Stream idle timeout (s)', num('idle', nc.stream_idle_timeout_in_seconds ?? 120, { 'data-label': 'Stream idle timeout', min: 1 })),
          field('Max retries', num('retries', nc.max_retries ?? 2, { 'data-label': 'Max retries' })),
          field('Backoff initial (ms)', num('backoff_initial', nc.retry_backoff_initial ?? 500, { 'data-label': 'Backoff initial' })),
          field('Backoff max (ms)', num('backoff_max', nc.retry_backoff_max ?? 5000, { 'data-label': 'Backoff max' })),
        ),
      );
      parts.push(
        field(
          'Fallbacks',
          h('input', { name: 'fallbacks', type: 'text', value: p ? p.fallbacks.join(', ') : '', autocomplete: 'off', spellcheck: 'false', placeholder: 'mittwald-shared' }),
          'Where requests go when this provider fails: "provider" (same model) or "provider/model", comma-separated, in order.',
        ),
      );
      const cb = p ? p.concurrency_and_buffer_size : { concurrency: 1000, buffer_size: 5000 };
      const br = p ? p.circuit_breaker : { failure_threshold: 5, cooldown_in_seconds: 30 };
      const headers = p ? Object.entries(nc.extra_headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n') : '';
      parts.push(
        h(
          'details',
          { class: 'advanced' },
          h('summary', { text: 'Advanced: capacity, circuit breaker, headers, content logging' }),
          h(
            'div',
            { class: 'grid2' },
            field('Concurrency', num('concurrency', cb.concurrency, { 'data-label': 'Concurrency', min: 1 })),
            field('Waiting buffer', num('buffer_size', cb.buffer_size, { 'data-label': 'Waiting buffer' })),
            field('Eject after failures', num('failure_threshold', br.failure_threshold, { 'data-label': 'Failure threshold', min: 1 })),
            field('Cooldown (s)', num('cooldown', br.cooldown_in_seconds, { 'data-label': 'Cooldown', min: 1 })),
          ),
          field('Extra headers', h('textarea', { name: 'extra_headers', rows: 2, spellcheck: 'false', placeholder: 'X-Team: agency-a', text: headers }), 'One "Name: value" per line, sent upstream with every request.'),
          field('Log request and response content for this provider', h('input', { type: 'checkbox', name: 'store_raw', checked: p ? p.store_raw_request_response : false })),
        ),
      );
      return parts;
    },
    async submit(form) {
      const el = form.elements;
      const network = {
        default_request_timeout_in_seconds: intOrNull(form, 'timeout') ?? 600,
        first_byte_timeout_in_seconds: intOrNull(form, 'first_byte'),
        stream_idle_timeout_in_seconds: intOrNull(form, 'idle') ?? 120,
        max_retries: intOrNull(form, 'retries') ?? 2,
        retry_backoff_initial: intOrNull(form, 'backoff_initial') ?? 500,
        retry_backoff_max: intOrNull(form, 'backoff_max') ?? 5000,
        extra_headers: parseHeaders(el.extra_headers.value),
      };
      const url = el.base_url.value.trim();
      if (url && (!editing || url !== nc.base_url)) network.base_url = url;
      const body = {
        network_config: network,
        fallbacks: splitList(el.fallbacks.value),
        concurrency_and_buffer_size: { concurrency: intOrNull(form, 'concurrency') ?? 1000, buffer_size: intOrNull(form, 'buffer_size') ?? 5000 },
        circuit_breaker: { failure_threshold: intOrNull(form, 'failure_threshold') ?? 5, cooldown_in_seconds: intOrNull(form, 'cooldown') ?? 30 },
        store_raw_request_response: el.store_raw.checked,
      };
      let name;
      if (editing) {
        name = p.name;
        if (network.first_byte_timeout_in_seconds === null && nc.first_byte_timeout_in_seconds === undefined) delete network.first_byte_timeout_in_seconds;
        await api(`/api/providers/${enc(name)}`, { method: 'PUT', body });
      } else {
        const isCustom = el.kind.value === 'custom';
        name = isCustom ? el.name.value.trim() : el.builtin.value;
        if (!name) throw new Error('Give the provider a name.');
        if (network.first_byte_timeout_in_seconds === null) delete network.first_byte_timeout_in_seconds;
        body.provider = name;
        if (isCustom) body.custom_provider_config = { base_provider_type: el.base_provider_type.value, is_key_less: el.is_key_less.checked };
        await api('/api/providers', { method: 'POST', body });
      }
      toast(`Provider ${name} ${editing ? 'saved' : 'added'}`);
      await reload();
      return name;
    },
  });
}

// --- key form ---

function keyDialog(p, k, reload) {
  const editing = !!k;
  const settings = KEY_SETTINGS[wireOf(p)];
  return formDialog({
    id: 'key-dialog',
    title: editing ? `Edit key ${k.name} of ${p.name}` : `Add key to ${p.name}`,
    submitLabel: editing ? 'Save' : 'Add key',
    build() {
      return [
        field('Name', h('input', { name: 'name', type: 'text', required: true, value: k ? k.name : '', autocomplete: 'off', spellcheck: 'false', placeholder: 'mittwald-dedicated' })),
        field(
          'API key',
          h('input', { name: 'value', type: 'password', required: !editing && !settings, autocomplete: 'new-password', spellcheck: 'false', placeholder: editing ? `unchanged (${k.value})` : 'sk-… or env.MY_KEY_VAR' }),
          editing
            ? 'Leave empty to keep the stored secret. It is never shown again.'
            : 'The secret, or env.VAR to read it from the gateway’s environment. It is stored and only ever shown redacted.',
        ),
        field(
          'Models',
          h('input', { name: 'models', type: 'text', value: k ? k.models.join(', ') : '*', autocomplete: 'off', spellcheck: 'false' }),
          '"*" for every model, or the model ids this key serves, comma-separated. A listed model wins over "*" keys of other providers.',
        ),
        field(
          'Blacklisted models',
          h('input', { name: 'blacklisted', type: 'text', value: k ? k.blacklisted_models.join(', ') : '', autocomplete: 'off', spellcheck: 'false' }),
          'Models this key must never serve.',
        ),
        field('Weight', h('input', { name: 'weight', type: 'number', min: 0, step: 'any', required: true, value: k ? k.weight : 1 }), 'Share of traffic among keys (and providers) serving the same model.'),
        field('Enabled', h('input', { type: 'checkbox', name: 'enabled', checked: k ? k.enabled : true })),
        settings
          ? field(
              settings.label,
              h('textarea', { name: 'provider_settings', rows: 6, spellcheck: 'false', text: JSON.stringify((k && k[settings.field]) || settings.template, null, 2) }),
              settings.hint,
            )
          : null,
      ].filter(Boolean);
    },
    async submit(form) {
      const el = form.elements;
      const weight = Number(el.weight.value);
      if (!Number.isFinite(weight) || weight < 0) throw new Error('Weight must be a number ≥ 0.');
      const body = {
        name: el.name.value.trim(),
        models: splitList(el.models.value),
        blacklisted_models: splitList(el.blacklisted.value),
        weight,
        enabled: el.enabled.checked,
      };
      const value = el.value.value.trim();
      if (value) body.value = value;
      if (settings) {
        try {
          body[settings.field] = JSON.parse(el.provider_settings.value);
        } catch (e) {
          throw new Error(`${settings.label} is not valid JSON: ${e.message}`);
        }
      }
      if (editing) await api(`/api/providers/${enc(p.name)}/keys/${enc(k.id)}`, { method: 'PUT', body });
      else await api(`/api/providers/${enc(p.name)}/keys`, { method: 'POST', body });
      el.value.value = '';
      toast(`Key ${body.name} ${editing ? 'saved' : 'added'}`);
      await reload();
      return body.name;
    },
  });
}

// --- test this model ---

function testPanel(params) {
  const datalist = h('datalist', { id: 'model-suggestions' });
  const model = h('input', { name: 'model', type: 'text', required: true, list: 'model-suggestions', autocomplete: 'off', spellcheck: 'false', placeholder: 'openai/PREMIUM or gpt-oss-120b', value: params.get('model') || '' });
  const route = h(
    'select',
    { name: 'route' },
    h('option', { value: '/v1/chat/completions', text: '/v1 (all providers)' }),
    h('option', { value: '/openai/v1/chat/completions', text: '/openai/v1 (OpenAI SDK drop-in)' }),
  );
  const message = h('textarea', { name: 'message', rows: 2, required: true, text: 'Hello! Answer in one short sentence.' });
  const send = h('button', { type: 'submit', class: 'btn primary', id: 'test-send' }, 'Send request');
  const out = h('div', { class: 'test-result', id: 'test-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'test-form' },
    h('div', { class: 'grid-test' }, field('Model', model, 'provider/model, or a bare model routed by the keys’ model lists.'), field('Route', route)),
    field('Message', message),
    h('div', { class: 'form-actions' }, send),
    datalist,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    send.disabled = true;
    clear(out, h('p', { class: 'muted', text: 'Waiting for the answer…' }));
    const started = performance.now();
    let resp;
    let text;
    try {
      resp = await fetch(route.value, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: model.value.trim(), messages: [{ role: 'user', content: message.value }] }),
      });
      text = await resp.text();
    } catch (e) {
      clear(out, h('p', { class: 'form-error', role: 'alert', text: `Request failed: ${e.message}` }));
      send.disabled = false;
      return;
    }
    const latency = performance.now() - started;
    send.disabled = false;
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    const hdr = (n) => resp.headers.get(n);
    const answer = body && body.choices && body.choices[0] && body.choices[0].message ? body.choices[0].message.content : null;
    const err = body && body.error ? body.error.message || JSON.stringify(body.error) : null;
    const trail = (hdr('x-switchyard-trail') || '').split(', ').filter(Boolean);
    const usage = body && body.usage;
    clear(
      out,
      h(
        'div',
        { class: 'result-meta' },
        h('span', { class: `badge ${statusClass(resp.status)} status`, text: `${resp.status} ${resp.statusText || ''}`.trim() }),
        h('span', { class: 'latency', text: fmtMs(latency) }),
        hdr('x-switchyard-provider')
          ? h('span', { class: 'served' }, 'served by ', h('strong', { class: 'served-provider', text: hdr('x-switchyard-provider') }), ` / ${hdr('x-switchyard-model') || ''}`, hdr('x-switchyard-key') ? ` · key ${hdr('x-switchyard-key')}` : '')
          : null,
        hdr('x-switchyard-attempts') ? h('span', { class: 'muted', text: `${hdr('x-switchyard-attempts')} attempt(s)` }) : null,
        usage ? h('span', { class: 'muted', text: `${usage.prompt_tokens ?? '?'} in / ${usage.completion_tokens ?? '?'} out tokens` }) : null,
      ),
      answer !== null
        ? h('blockquote', { class: 'answer', text: answer })
        : h('p', { class: 'form-error', role: 'alert', text: err || text.slice(0, 2000) || 'empty answer' }),
      trail.length
        ? h('div', { class: 'trail-box' }, h('h3', { text: 'Trail' }), h('ol', { class: 'trail' }, trail.map((t) => h('li', { class: /=(2\d\d)$/.test(t) ? 'ok' : 'bad' }, h('code', { text: t })))))
        : null,
    );
  });
  const el = h(
    'section',
    { class: 'card test', id: 'test-model', 'aria-labelledby': 'test-title' },
    h('h2', { id: 'test-title', text: 'Test a model' }),
    h('p', { class: 'muted', text: 'Sends a real chat completion through the gateway, exactly as an app would, and shows who answered.' }),
    form,
    out,
  );
  return {
    el,
    prefill(value) {
      model.value = value;
      el.scrollIntoView({ behavior: 'smooth', block: 'start' });
      model.focus();
    },
    suggest(list) {
      const seen = new Set();
      for (const p of list) {
        for (const k of p.keys) {
          for (const m of k.models) {
            if (m === '*') continue;
            seen.add(`${p.name}/${m}`);
            seen.add(m);
          }
        }
      }
      clear(datalist, [...seen].sort().map((v) => h('option', { value: v })));
    },
  };
}
