// Small SVG charts drawn from plain arrays: stacked bars over time, lines over time, and horizontal
// share bars. Sized to their container in CSS pixels so text is never stretched.
import { h, fmtTime } from './lib.js';

const PALETTE = ['#2f6fdb', '#e07b24', '#1c9a6c', '#c2417e', '#7b5cd6', '#b5922b', '#2aa3b8', '#d24c3c', '#5c7a29', '#8a6b55'];
const OTHER = '#8c96a3';

/** Stable colours: the same group name gets the same colour on every chart of a page. */
export function palette(names) {
  const map = new Map();
  names.forEach((n, i) => map.set(n, n === '(none)' ? OTHER : PALETTE[i % PALETTE.length]));
  return map;
}

/** A round axis: about four steps of 1, 2, 2.5 or 5 × 10^n; whole steps for counts. */
function niceScale(max, integer) {
  if (!(max > 0) || (integer && max <= 4)) return { max: integer ? 4 : 1, step: integer ? 1 : 0.25 };
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = 10 * p;
  for (const m of integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]) {
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  }
  if (integer) step = Math.max(1, Math.round(step));
  return { max: step * Math.ceil(max / step - 1e-9), step };
}

function axisLabel(t, spanMs) {
  const d = new Date(t);
  if (spanMs > 2 * 86400000) return `${d.getMonth() + 1}/${d.getDate()} ${String(d.getHours()).padStart(2, '0')}h`;
  return fmtTime(t, false).slice(0, 5);
}

const M = { top: 10, right: 10, bottom: 22, left: 48 };

function frame(width, height, label) {
  return h('svg:svg', {
    class: 'chart-svg',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
  });
}

function gridAndAxes(svg, { width, height, scale, yFmt, times, bucketMs }) {
  const iw = width - M.left - M.right;
  const ih = height - M.top - M.bottom;
  const steps = Math.round(scale.max / scale.step);
  for (let i = 0; i <= steps; i++) {
    const v = scale.step * i;
    const y = M.top + ih - (ih * i) / steps;
    svg.append(h('svg:line', { x1: M.left, x2: width - M.right, y1: y, y2: y, class: i ? 'grid' : 'axis' }));
    svg.append(h('svg:text', { x: M.left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick', text: yFmt(v) }));
  }
  const n = times.length;
  const span = n ? times[n - 1] - times[0] + bucketMs : 0;
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(iw / 70))));
  for (let i = 0; i < n; i += every) {
    const x = M.left + ((i + 0.5) * iw) / n;
    svg.append(h('svg:text', { x, y: height - 6, 'text-anchor': 'middle', class: 'tick', text: axisLabel(times[i], span) }));
  }
  return { iw, ih };
}

/**
 * Stacked bars: `series` = [{name, color, values: number[]}] aligned with `times`.
 */
export function stackedBars({ times, bucketMs, series, width, height = 180, yFmt = String, label, integer = false }) {
  const totals = times.map((_, i) => series.reduce((s, x) => s + (x.values[i] || 0), 0));
  const scale = niceScale(Math.max(0, ...totals), integer);
  const yMax = scale.max;
  const svg = frame(width, height, label);
  const { iw, ih } = gridAndAxes(svg, { width, height, scale, yFmt, times, bucketMs });
  const n = times.length || 1;
  const slot = iw / n;
  const bw = Math.max(1, Math.min(28, slot * 0.72));
  times.forEach((t, i) => {
    let acc = 0;
    for (const s of series) {
      const v = s.values[i] || 0;
      if (v <= 0) continue;
      const y0 = M.top + ih - (acc / yMax) * ih;
      acc += v;
      const y1 = M.top + ih - (acc / yMax) * ih;
      const rect = h('svg:rect', {
        x: (M.left + i * slot + (slot - bw) / 2).toFixed(1),
        y: y1.toFixed(1),
        width: bw.toFixed(1),
        height: Math.max(1, y0 - y1).toFixed(1),
        fill: s.color,
        class: 'bar',
        'data-series': s.name,
      });
      rect.append(h('svg:title', { text: `${fmtTime(t)} · ${s.name}: ${yFmt(v)}` }));
      svg.append(rect);
    }
  });
  return svg;
}

/** Lines: `series` = [{name, color, values: (number|null)[], dashed}] aligned with `times`. */
export function lines({ times, bucketMs, series, width, height = 180, yFmt = String, label }) {
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const scale = niceScale(Math.max(0, ...all), false);
  const yMax = scale.max;
  const svg = frame(width, height, label);
  const { iw, ih } = gridAndAxes(svg, { width, height, scale, yFmt, times, bucketMs });
  const n = times.length || 1;
  const xAt = (i) => M.left + ((i + 0.5) * iw) / n;
  const yAt = (v) => M.top + ih - (v / yMax) * ih;
  for (const s of series) {
    // Break the line where a bucket has no requests.
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}`;
      pen = true;
    });
    if (d) {
      svg.append(h('svg:path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-dasharray': s.dashed ? '5 4' : undefined, class: 'line', 'data-series': s.name }));
    }
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const c = h('svg:circle', { cx: xAt(i).toFixed(1), cy: yAt(v).toFixed(1), r: 3, fill: s.color, class: 'dot' });
      c.append(h('svg:title', { text: `${fmtTime(times[i])} · ${s.name}: ${yFmt(v)}` }));
      svg.append(c);
    });
  }
  return svg;
}

/** Horizontal share bars, as HTML (wraps nicely on phones). */
export function shareBars(items, fmt = String) {
  const max = Math.max(0, ...items.map((i) => i.value)) || 1;
  return h(
    'ul',
    { class: 'share-bars' },
    items.map((it) =>
      h(
        'li',
        { dataset: { group: it.name } },
        h('span', { class: 'share-name' }, h('span', { class: 'swatch', 'aria-hidden': 'true', dataset: { color: it.color } }), it.name),
        h('span', { class: 'share-track', 'aria-hidden': 'true' }, h('span', { class: 'share-fill', dataset: { color: it.color, pct: ((it.value / max) * 100).toFixed(1) } })),
        h('span', { class: 'share-value', text: fmt(it.value) }),
      ),
    ),
  );
}

/** Applies colours and widths set as data attributes (CSP forbids inline style attributes). */
export function paint(root) {
  for (const el of root.querySelectorAll('[data-color]')) el.style.background = el.dataset.color;
  for (const el of root.querySelectorAll('[data-pct]')) el.style.width = `${el.dataset.pct}%`;
}

export function legend(series) {
  return h(
    'ul',
    { class: 'legend' },
    series.map((s) => h('li', {}, h('span', { class: 'swatch', 'aria-hidden': 'true', dataset: { color: s.color } }), s.name)),
  );
}
