// Cache: the response cache (Bifrost's `semantic_cache` plugin). On/off, TTL and threshold
// (PUT /api/plugins/semantic_cache), hit rate and entries (GET /api/cache/stats), clear (DELETE /api/cache).
// Cache hits are also marked in the Logs view.
import { h, clear, api, toast, confirmDialog, field, pageHeader, fmtInt, fmtPct } from './lib.js';

function tile(id, label, value, sub) {
  return h('div', { class: 'tile', id }, h('div', { class: 'tile-label', text: label }), h('div', { class: 'tile-value', text: value }), sub ? h('div', { class: 'tile-sub', text: sub }) : null);
}

async function load() {
  const [stats, plugins] = await Promise.all([api('/api/cache/stats'), api('/api/plugins')]);
  const plugin = (plugins.plugins || []).find((p) => p.name === 'semantic_cache') || null;
  return { stats, plugin };
}

function settingsForm(plugin, stats, reload) {
  const config = plugin ? { ...plugin.config } : {};
  const enabled = h('input', { type: 'checkbox', name: 'enabled', id: 'cache-enabled' });
  enabled.checked = Boolean(plugin && plugin.enabled);
  const ttl = h('input', { type: 'text', name: 'ttl', id: 'cache-ttl', value: String(config.ttl ?? (stats.ttl_seconds != null ? `${stats.ttl_seconds}s` : '5m')), autocomplete: 'off' });
  const threshold = h('input', { type: 'number', name: 'threshold', id: 'cache-threshold', min: '0', max: '1', step: '0.01', value: String(config.threshold ?? stats.threshold ?? 0.8) });
  const key = h('input', { type: 'text', name: 'default_cache_key', id: 'cache-default-key', value: config.default_cache_key || '', autocomplete: 'off', placeholder: 'none: only requests with x-bf-cache-key' });
  const error = h('p', { class: 'form-error', role: 'alert', id: 'cache-error' });
  error.hidden = true;
  const form = h(
    'form',
    { class: 'panel', id: 'cache-form' },
    h('h2', { text: 'Settings' }),
    field('Cache on', enabled),
    field('Time to live', ttl, 'Seconds or a duration: 300, "5m", "1h30m"'),
    field('Similarity threshold', threshold, 'Semantic matches from 0 to 1 (needs an embedding model)'),
    field('Default cache key', key, 'Used when a request sends no x-bf-cache-key'),
    error,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', id: 'cache-save', text: 'Save' })),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    error.hidden = true;
    const next = { ...config };
    const t = ttl.value.trim();
    next.ttl = /^\d+(\.\d+)?$/.test(t) ? Number(t) : t;
    next.threshold = Number(threshold.value);
    if (key.value.trim()) next.default_cache_key = key.value.trim();
    else delete next.default_cache_key;
    if (!next.provider) next.dimension = next.dimension || 1;
    try {
      await api('/api/plugins/semantic_cache', { method: 'PUT', body: { name: 'semantic_cache', enabled: enabled.checked, config: next } });
      toast('Cache settings saved');
      reload();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  return form;
}

export async function render(main, ctx) {
  const draw = async () => {
    const { stats, plugin } = await load();
    if (!ctx.alive()) return;
    const clearButton = h('button', { type: 'button', class: 'btn danger', id: 'cache-clear', text: 'Clear cache' });
    clearButton.addEventListener('click', async () => {
      if (!(await confirmDialog('Remove every cached answer?', { confirmLabel: 'Clear' }))) return;
      const r = await api('/api/cache', { method: 'DELETE' });
      toast(`Cleared ${fmtInt(r.cleared)} cached answers`);
      draw();
    });
    const lookups = stats.hits + stats.misses;
    const state = !stats.configured ? 'not configured' : stats.enabled ? `on (${stats.mode})` : 'off';
    clear(
      main,
      pageHeader('Cache', 'Answers to repeated (or, with an embedding model, similar) requests, served without an upstream call at no cost.', clearButton),
      h(
        'div',
        { class: 'tiles', id: 'cache-tiles' },
        tile('cache-state', 'State', state, `store: ${stats.store}`),
        tile('cache-hit-rate', 'Hit rate', stats.hit_rate == null ? '–' : fmtPct(stats.hit_rate, 1), `${fmtInt(stats.hits)} of ${fmtInt(lookups)} lookups answered`),
        tile('cache-entries', 'Entries', stats.entries == null ? '–' : fmtInt(stats.entries)),
        tile('cache-ttl-tile', 'TTL', stats.ttl_seconds == null ? '–' : `${stats.ttl_seconds}s`, stats.threshold == null ? null : `threshold ${stats.threshold}`),
      ),
      settingsForm(plugin, stats, draw),
    );
  };
  await draw();
}
