// Dashboard: requests, errors, latency, tokens and cost over time, split by provider or model, drawn
// from /api/logs/histogram and /api/logs/stats and refreshed every few seconds.
import { h, clear, api, meta, fmtMs, fmtInt, fmtCompact, fmtUsd, fmtTime, pageHeader, emptyState } from './lib.js';
import { stackedBars, lines, shareBars, legend, palette, paint } from './charts.js';

const RANGES = [
  { id: '15m', label: '15 min', ms: 15 * 60e3, bucket: 30 },
  { id: '1h', label: '1 hour', ms: 3600e3, bucket: 60 },
  { id: '6h', label: '6 hours', ms: 6 * 3600e3, bucket: 600 },
  { id: '24h', label: '24 hours', ms: 24 * 3600e3, bucket: 3600 },
  { id: '7d', label: '7 days', ms: 7 * 86400e3, bucket: 6 * 3600 },
];
const POLL_MS = 5000;

export async function render(main, ctx) {
  if (!meta.logs_enabled) {
    clear(main, pageHeader('Dashboard'), emptyState('Request logging is off on this gateway, so there is nothing to chart. Start it without --no-request-logs.'));
    return undefined;
  }
  const params = ctx.params;
  let range = RANGES.find((r) => r.id === params.get('range')) || RANGES[1];
  let groupBy = params.get('group_by') === 'model' ? 'model' : 'provider';
  let paused = false;
  let last = null;

  const rangeSel = h('select', { id: 'dash-range', 'aria-label': 'Time range' }, RANGES.map((r) => h('option', { value: r.id, text: `Last ${r.label}` })));
  rangeSel.value = range.id;
  const groupSel = h('select', { id: 'dash-group', 'aria-label': 'Split by' }, h('option', { value: 'provider', text: 'by provider' }), h('option', { value: 'model', text: 'by model' }));
  groupSel.value = groupBy;
  const live = h('span', { class: 'live', id: 'dash-live', 'aria-live': 'off' });
  const pause = h('button', { type: 'button', class: 'btn', 'aria-pressed': 'false' }, 'Pause');
  const tiles = h('div', { class: 'tiles', id: 'dash-tiles' });
  const body = h('div', { class: 'dash-body', id: 'dash-body' });

  clear(
    main,
    pageHeader('Dashboard', 'Traffic through the gateway, live from the request log.', rangeSel, groupSel, pause, live),
    tiles,
    body,
  );

  const sync = () => {
    const q = new URLSearchParams({ range: range.id, group_by: groupBy });
    history.replaceState(null, '', `#/dashboard?${q}`);
  };
  rangeSel.addEventListener('change', () => {
    range = RANGES.find((r) => r.id === rangeSel.value) || RANGES[1];
    sync();
    refresh();
  });
  groupSel.addEventListener('change', () => {
    groupBy = groupSel.value;
    sync();
    refresh();
  });
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) refresh();
    else live.textContent = 'paused';
  });

  let inFlight = false;
  async function refresh() {
    if (inFlight || !ctx.alive()) return;
    inFlight = true;
    try {
      const bucketMs = range.bucket * 1000;
      const now = Date.now();
      const start = Math.floor((now - range.ms) / bucketMs) * bucketMs + bucketMs;
      const since = new Date(start).toISOString();
      const q = `start_time=${encodeURIComponent(since)}`;
      const [grouped, overall, stats] = await Promise.all([
        api(`/api/logs/histogram?bucket=${range.bucket}&group_by=${groupBy}&${q}`),
        api(`/api/logs/histogram?bucket=${range.bucket}&${q}`),
        api(`/api/logs/stats?${q}`),
      ]);
      if (!ctx.alive()) return;
      last = { grouped, overall, stats: stats.stats, dropped: stats.dropped_records, start, now, bucketMs };
      draw();
      live.textContent = paused ? 'paused' : `live · updated ${fmtTime(Date.now(), false)}`;
      main.dataset.updated = String(Date.now());
    } catch (e) {
      live.textContent = `update failed: ${e.message}`;
    } finally {
      inFlight = false;
    }
  }

  function draw() {
    if (!last) return;
    const { grouped, overall, stats, start, now, bucketMs } = last;
    drawTiles(tiles, stats, last.dropped);
    const times = [];
    for (let t = start; t <= now; t += bucketMs) times.push(t);
    const index = new Map(times.map((t, i) => [t, i]));
    const groups = [...new Set(grouped.buckets.map((b) => b.group || '(none)'))].sort();
    const colors = palette(groups);
    const zero = () => times.map(() => 0);
    const per = {};
    for (const g of groups) per[g] = { requests: zero(), errors: zero(), tokens: zero(), cost: zero() };
    for (const b of grouped.buckets) {
      const i = index.get(b.start_ms);
      if (i === undefined) continue;
      const s = per[b.group || '(none)'];
      s.requests[i] += b.requests;
      s.errors[i] += b.errors;
      s.tokens[i] += b.input_tokens + b.output_tokens;
      s.cost[i] += b.cost_usd;
    }
    const p50 = times.map(() => null);
    const p95 = times.map(() => null);
    for (const b of overall.buckets) {
      const i = index.get(b.start_ms);
      if (i === undefined) continue;
      p50[i] = b.latency_p50_ms;
      p95[i] = b.latency_p95_ms;
    }
    const series = (metric) => groups.map((g) => ({ name: g, color: colors.get(g), values: per[g][metric] }));
    // The same breakpoints as the stylesheet: two chart columns above 1000 px, smaller padding on phones.
    const full = body.clientWidth || 900;
    const col = matchMedia('(max-width: 1000px)').matches ? full : (full - 16) / 2;
    const width = Math.max(240, Math.floor(col - (matchMedia('(max-width: 700px)').matches ? 28 : 38)));
    const common = { times, bucketMs, width };
    const sum = (arr) => arr.reduce((a, b) => a + b, 0);
    const totals = groups.map((g) => ({ name: g, color: colors.get(g), requests: sum(per[g].requests), errors: sum(per[g].errors), tokens: sum(per[g].tokens), cost: sum(per[g].cost) }));
    const split = groupBy === 'provider' ? 'provider' : 'model';

    const card = (id, title, chart, extra) =>
      h('section', { class: 'card chart', id, 'aria-labelledby': `${id}-t` }, h('h2', { id: `${id}-t`, text: title }), chart, extra);
    const noData = stats.requests === 0;
    clear(
      body,
      noData
        ? emptyState(`No requests in the last ${RANGES.find((r) => r.ms === range.ms).label}.`, h('p', {}, 'Send one with ', h('a', { href: '#/providers', text: 'Test a model' }), ' on the Model Providers page, or point an app at /v1.'))
        : null,
      groups.length ? legend(groups.map((g) => ({ name: g, color: colors.get(g) }))) : null,
      h(
        'div',
        { class: 'chart-grid' },
        card('chart-requests', `Requests by ${split}`, stackedBars({ ...common, series: series('requests'), integer: true, yFmt: fmtCompact, label: `Requests per ${range.bucket} s by ${split}` })),
        card('chart-errors', `Errors by ${split}`, stackedBars({ ...common, series: series('errors'), integer: true, yFmt: fmtCompact, label: `Errors per bucket by ${split}` })),
        card(
          'chart-latency',
          'Latency p50 / p95',
          lines({ ...common, series: [{ name: 'p50', color: '#1c9a6c', values: p50 }, { name: 'p95', color: '#d24c3c', values: p95, dashed: true }], yFmt: msTick, label: 'Latency percentiles over time' }),
          legend([{ name: 'p50', color: '#1c9a6c' }, { name: 'p95', color: '#d24c3c' }]),
        ),
        card('chart-tokens', `Tokens by ${split}`, stackedBars({ ...common, series: series('tokens'), integer: true, yFmt: fmtCompact, label: `Tokens per bucket by ${split}` })),
        card(
          'chart-cost',
          `Cost by ${split} (known prices)`,
          stackedBars({ ...common, series: series('cost'), yFmt: (v) => fmtUsd(v), label: `Cost per bucket by ${split}` }),
          stats.unknown_cost_requests ? h('p', { class: 'muted small', text: `${fmtInt(stats.unknown_cost_requests)} request(s) with unknown price are not included.` }) : null,
        ),
        card(
          'chart-share',
          `Share by ${split}`,
          totals.length
            ? h(
              'div',
              { class: 'shares' },
              h('h3', { text: 'Requests' }),
              shareBars(totals.map((t) => ({ name: t.name, color: t.color, value: t.requests })), (v) => fmtInt(v)),
              h('h3', { text: 'Errors' }),
              shareBars(totals.map((t) => ({ name: t.name, color: t.color, value: t.errors })), (v) => fmtInt(v)),
              h('h3', { text: 'Tokens' }),
              shareBars(totals.map((t) => ({ name: t.name, color: t.color, value: t.tokens })), fmtCompact),
            )
            : h('p', { class: 'muted', text: 'No data yet.' }),
        ),
      ),
    );
    paint(body);
  }

  const timer = setInterval(() => {
    if (!paused && !document.hidden) refresh();
  }, POLL_MS);
  let resizeTimer = null;
  const onResize = () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(draw, 150);
  };
  window.addEventListener('resize', onResize);
  await refresh();
  return () => {
    clearInterval(timer);
    window.removeEventListener('resize', onResize);
  };
}

function msTick(v) {
  if (v === 0) return '0';
  if (v < 1000) return `${+v.toFixed(1)}ms`;
  return `${+(v / 1000).toFixed(2)}s`;
}

function drawTiles(tiles, s, dropped) {
  const errRate = s.requests ? (s.errors / s.requests) * 100 : 0;
  const tile = (id, label, value, sub, cls = '') =>
    h('div', { class: `tile ${cls}`, id }, h('div', { class: 'tile-label', text: label }), h('div', { class: 'tile-value', text: value }), sub ? h('div', { class: 'tile-sub', text: sub }) : null);
  clear(
    tiles,
    tile('tile-requests', 'Requests', fmtInt(s.requests), `${s.success_rate.toFixed(1)} % succeeded`),
    tile('tile-errors', 'Errors', fmtInt(s.errors), `${errRate.toFixed(1)} % of requests`, s.errors ? 'bad' : ''),
    tile('tile-p50', 'Latency p50', fmtMs(s.latency_p50_ms), `avg ${fmtMs(s.latency_avg_ms)}`),
    tile('tile-p95', 'Latency p95', fmtMs(s.latency_p95_ms), `p99 ${fmtMs(s.latency_p99_ms)}`),
    tile('tile-tokens', 'Tokens', fmtCompact(s.input_tokens + s.output_tokens), `${fmtCompact(s.input_tokens)} in · ${fmtCompact(s.output_tokens)} out`),
    s.requests && s.unknown_cost_requests === s.requests
      ? tile('tile-cost', 'Cost', 'unknown', `no known price for ${fmtInt(s.requests)} request(s)`)
      : tile(
        'tile-cost',
        'Cost',
        fmtUsd(s.cost_usd),
        s.unknown_cost_requests ? `+ ${fmtInt(s.unknown_cost_requests)} with unknown price` : 'all prices known',
      ),
    dropped ? tile('tile-dropped', 'Dropped log records', fmtInt(dropped), 'queue was full', 'bad') : null,
  );
}
