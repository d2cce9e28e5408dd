// Routing: the lanes as the gateway sees them (which model goes where, weights, fallback chains) and
// "where would model X go?", answered by the gateway's own planner (/api/routing/explain).
import { h, clear, api, enc, pageHeader, emptyState, healthBadge, fmtPct } from './lib.js';
import { paint } from './charts.js';

const ROUTES = { v1: '/v1', openai: '/openai/v1', anthropic: '/anthropic', genai: '/genai' };

const REASONS = {
  named: 'named explicitly (provider/model)',
  alias: 'a key alias maps this name to the upstream id',
  listed: 'a key lists this model',
  discovered: 'the provider’s /v1/models list has it (served through a "*" key)',
  wildcard: 'served through a "*" key',
  request_fallback: 'the request’s own fallbacks',
  configured_fallback: 'configured fallback',
};

export async function render(main, ctx) {
  const data = await api('/api/providers');
  const providers = data.providers || [];
  const model = h('input', { id: 'explain-model', name: 'model', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', list: 'explain-suggestions', placeholder: 'e.g. PREMIUM, gpt-oss-120b, openai/gpt-4o', value: ctx.params.get('model') || '' });
  const route = h(
    'select',
    { id: 'explain-route', name: 'route' },
    h('option', { value: 'v1', text: '/v1 (all providers)' }),
    h('option', { value: 'openai', text: '/openai/v1 (openai first)' }),
    h('option', { value: 'anthropic', text: '/anthropic (anthropic first)' }),
    h('option', { value: 'genai', text: '/genai (gemini first)' }),
  );
  route.value = ctx.params.get('route') || 'v1';
  const fallbacks = h('input', { id: 'explain-fallbacks', name: 'fallbacks', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'optional: provider/model, …', value: ctx.params.get('fallbacks') || '' });
  const listed = [...new Set(providers.flatMap((p) => p.keys.flatMap((k) => k.models)).filter((m) => m !== '*'))].sort();
  const out = h('div', { id: 'explain-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'explain-form' },
    h(
      'div',
      { class: 'grid-explain' },
      h('div', { class: 'field' }, h('label', { for: model.id, text: 'Model' }), model),
      h('div', { class: 'field' }, h('label', { for: route.id, text: 'Route' }), route),
      h('div', { class: 'field' }, h('label', { for: fallbacks.id, text: 'Request fallbacks' }), fallbacks),
      h('div', { class: 'field end' }, h('button', { type: 'submit', class: 'btn primary', id: 'explain-go' }, 'Explain')),
    ),
    h('datalist', { id: 'explain-suggestions' }, listed.map((m) => h('option', { value: m }))),
  );
  async function explain() {
    const m = model.value.trim();
    if (!m) return;
    const q = new URLSearchParams({ model: m, route: route.value });
    if (fallbacks.value.trim()) q.set('fallbacks', fallbacks.value.trim());
    history.replaceState(null, '', `#/routing?${q}`);
    out.dataset.state = 'loading';
    try {
      const r = await api(`/api/routing/explain?${q}`);
      clear(out, explanation(r));
      paint(out);
    } catch (e) {
      clear(out, h('p', { class: 'form-error', role: 'alert', text: e.message }));
    }
    out.dataset.state = 'done';
    out.dataset.updated = String(Date.now());
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    explain();
  });

  const mapBox = h('div', { id: 'model-map' }, h('p', { class: 'muted', text: 'Loading…' }));
  clear(
    main,
    pageHeader('Routing', 'Which model goes where: the lanes, their weights and fallback chains, as the gateway routes right now.'),
    h('section', { class: 'card', 'aria-labelledby': 'explain-title' }, h('h2', { id: 'explain-title', text: 'Where would a model go?' }), form, out),
    h('section', { class: 'card', 'aria-labelledby': 'map-title' }, h('h2', { id: 'map-title', text: 'Model map' }), h('p', { class: 'muted', text: 'Bare model names by lane. A key that lists a model wins over "*" keys; equals share traffic by weight; each lane is followed by its fallback chain.' }), mapBox),
    h('section', { class: 'card', 'aria-labelledby': 'lanes-title' }, h('h2', { id: 'lanes-title', text: 'Lanes by provider' }), lanes(providers)),
  );
  if (model.value) explain();
  await modelMap(mapBox, providers, listed, ctx);
  paint(main);
  return undefined;
}

function explanation(r) {
  if (!r.routable) {
    return h('div', { class: 'plan-error' }, h('p', { class: 'form-error', role: 'alert', text: r.error ? r.error.message : 'cannot be routed' }));
  }
  return h(
    'div',
    {},
    h(
      'p',
      { class: 'muted' },
      `Plan for `,
      h('code', { text: r.model }),
      ` on ${ROUTES[r.route] || r.route}: ${r.plan.length} target${r.plan.length === 1 ? '' : 's'}, tried in this order until one answers.`,
      r.varies ? ` Providers of equal rank are ordered by a weighted draw per request; shares come from ${r.draws} draws of the gateway’s planner.` : '',
    ),
    h(
      'ol',
      { class: 'plan', id: 'plan' },
      r.plan.map((s, i) =>
        h(
          'li',
          { class: `plan-step${s.note ? ' skipped' : ''}`, dataset: { provider: s.provider, model: s.model } },
          h(
            'div',
            { class: 'step-head' },
            h('span', { class: 'step-no', 'aria-hidden': 'true', text: String(i + 1) }),
            h('code', { class: 'step-target', text: `${s.provider}/${s.model}` }),
            h('span', { class: `tag reason-${s.reason}`, text: s.reason === 'configured_fallback' && s.fallback_of ? `fallback of ${s.fallback_of}` : REASONS[s.reason] || s.reason }),
            s.primary_share !== undefined && s.primary_share !== null && r.varies ? h('span', { class: 'share-first', text: `first in ≈${fmtPct(s.primary_share)} of requests` }) : null,
            s.health && s.health.state !== 'healthy' ? healthBadge(s.health) : null,
          ),
          h('div', { class: 'muted small', text: `${s.wire} · ${s.base_url}` }),
          s.note ? h('p', { class: 'warn small', text: s.note }) : null,
          s.keys.length
            ? h(
              'ul',
              { class: 'step-keys' },
              s.keys.map((k) =>
                h(
                  'li',
                  { dataset: { key: k.name } },
                  h('span', { class: 'k-name', text: k.name }),
                  h('span', { class: 'muted k-meta', text: `weight ${k.weight}${k.matches === 'listed' ? ' · lists it' : ' · *'}` }),
                  h('span', { class: 'share-track', 'aria-hidden': 'true' }, h('span', { class: 'share-fill', dataset: { pct: (k.share * 100).toFixed(1), color: k.available ? '#2f6fdb' : '#8c96a3' } })),
                  h('span', { class: 'k-share', text: k.available ? fmtPct(k.share) : 'skipped' }),
                  !k.available ? healthBadge(k.health, { enabled: true, status: k.problem ? 'error' : undefined }) : null,
                ),
              ),
            )
            : null,
        ),
      ),
    ),
  );
}

async function modelMap(box, providers, listed, ctx) {
  const rows = await Promise.all(
    listed.map(async (m) => {
      try {
        return { model: m, r: await api(`/api/routing/explain?model=${enc(m)}`) };
      } catch (e) {
        return { model: m, error: e.message };
      }
    }),
  );
  if (!ctx.alive()) return;
  const wild = providers
    .map((p) => ({ p, keys: p.keys.filter((k) => k.enabled && k.models.includes('*')) }))
    .filter((x) => x.keys.length);
  const chain = (steps) =>
    h(
      'span',
      { class: 'chain' },
      steps.flatMap((s, i) => [
        i ? h('span', { class: 'arrow', 'aria-hidden': 'true', text: '→' }) : null,
        h('span', { class: `lane reason-${s.reason}`, title: REASONS[s.reason] || s.reason }, h('code', { text: s.provider }), s.reason === 'wildcard' ? h('small', { text: ' *' }) : null),
      ]),
    );
  const trs = rows.map(({ model, r, error }) =>
    h(
      'tr',
      { dataset: { model } },
      h('th', { scope: 'row', 'data-label': 'Model' }, h('code', { text: model })),
      h('td', { 'data-label': 'Lanes' }, error ? h('span', { class: 'err-text', text: error }) : r.routable ? chain(r.plan) : h('span', { class: 'err-text', text: r.error.message })),
      h('td', { 'data-label': '' }, h('a', { href: `#/routing?model=${enc(model)}`, text: 'explain', 'aria-label': `Explain ${model}` })),
    ),
  );
  trs.push(
    h(
      'tr',
      { dataset: { model: '*' } },
      h('th', { scope: 'row', 'data-label': 'Model' }, h('em', { text: 'any other model' })),
      h(
        'td',
        { 'data-label': 'Lanes' },
        wild.length
          ? h('span', { class: 'chain' }, wild.flatMap((x, i) => [i ? h('span', { class: 'sep', text: ' · ' }) : null, h('span', { class: 'lane reason-wildcard' }, h('code', { text: x.p.name }), h('small', { text: ` * (weight ${x.keys.reduce((a, k) => a + k.weight, 0)})` }))]))
          : h('span', { class: 'muted', text: 'no "*" key: other models are not routed unless named as provider/model' }),
      ),
      h('td', { 'data-label': '' }),
    ),
  );
  if (!providers.length) {
    clear(box, emptyState('No providers configured yet.', h('a', { href: '#/providers', text: 'Add a provider' })));
    return;
  }
  clear(
    box,
    h('div', { class: 'table-wrap' }, h('table', { class: 'map stack' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Model' }), h('th', { scope: 'col', text: 'Lanes in order' }), h('th', { scope: 'col' }, h('span', { class: 'sr-only', text: 'Details' })))), h('tbody', {}, trs))),
  );
}

function lanes(providers) {
  if (!providers.length) return emptyState('No providers configured yet.', h('a', { href: '#/providers', text: 'Add a provider' }));
  return h(
    'div',
    { class: 'lanes' },
    providers.map((p) => {
      const enabled = p.keys.filter((k) => k.enabled);
      const total = enabled.reduce((a, k) => a + Math.max(0, k.weight), 0);
      return h(
        'article',
        { class: 'lane-card', dataset: { provider: p.name } },
        h('h3', {}, h('code', { text: p.name }), ' ', h('span', { class: 'tag', text: p.custom_provider_config ? `custom · ${p.custom_provider_config.base_provider_type}` : 'built-in' }), ' ', p.health.state !== 'healthy' ? healthBadge(p.health) : null),
        h('div', { class: 'muted small', text: p.network_config.base_url }),
        p.keys.length
          ? h(
            'ul',
            { class: 'step-keys' },
            p.keys.map((k) => {
              const share = k.enabled ? (total > 0 ? Math.max(0, k.weight) / total : 1 / enabled.length) : 0;
              return h(
                'li',
                { dataset: { key: k.name } },
                h('span', { class: 'k-name', text: k.name }),
                h('span', { class: 'muted k-meta', text: `models ${k.models.join(', ') || '(none)'}${k.blacklisted_models.length ? ` · never ${k.blacklisted_models.join(', ')}` : ''} · weight ${k.weight}` }),
                h('span', { class: 'share-track', 'aria-hidden': 'true' }, h('span', { class: 'share-fill', dataset: { pct: (share * 100).toFixed(1), color: k.enabled ? '#2f6fdb' : '#8c96a3' } })),
                h('span', { class: 'k-share', text: k.enabled ? fmtPct(share) : 'off' }),
                healthBadge(k.health, { enabled: k.enabled, status: k.status }),
              );
            }),
          )
          : h('p', { class: 'warn small', text: 'no keys' }),
        h(
          'p',
          { class: 'small' },
          'Fallback chain: ',
          p.fallbacks.length
            ? h('span', { class: 'chain' }, [p.name, ...p.fallbacks].flatMap((f, i) => [i ? h('span', { class: 'arrow', 'aria-hidden': 'true', text: '→' }) : null, h('code', { text: f })]))
            : h('span', { class: 'muted', text: 'none' }),
        ),
      );
    }),
  );
}
