// Shared helpers: DOM building (text is always set as text, never parsed as HTML), API calls,
// formatting, toasts and modal dialogs.

/** Builds an element. `attrs`: attributes, plus `on*` listeners, `class`, `dataset`, `text`. */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && !svg) el.value = v;
    else if (k === 'checked' && !svg) el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let sessionInfo = null;

/** What GET /api/auth/session says: whether admin auth is on, who is logged in, the CSRF token. */
export function session() {
  if (!sessionInfo) {
    sessionInfo = fetch('/api/auth/session', { headers: { accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : {}))
      .catch(() => ({}));
  }
  return sessionInfo;
}

/** Calls a JSON API of this gateway; throws ApiError with the API's own message on failure. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const init = { method, headers: { accept: 'application/json' }, signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD') {
    // State-changing calls made with the session cookie carry its CSRF token.
    const s = await session();
    if (s.csrf_token) init.headers['x-csrf-token'] = s.csrf_token;
  }
  const resp = await fetch(path, init);
  if (resp.status === 401 && path.startsWith('/api/')) {
    // The session ended (expired, logged out elsewhere, password changed): log in again.
    location.assign('/login');
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!resp.ok) {
    const msg = (data && data.error && (data.error.message || data.error)) || `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, typeof msg === 'string' ? msg : JSON.stringify(msg), data);
  }
  return data;
}

export const enc = encodeURIComponent;

export const meta = (() => {
  try {
    return JSON.parse(document.getElementById('switchyard-meta').textContent);
  } catch {
    return { builtins: [], base_types: ['openai'], logs_enabled: true };
  }
})();

// --- formatting ---

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms === 0) return '0 ms';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

export function fmtInt(n) {
  if (n === null || n === undefined) return '–';
  return Number(n).toLocaleString('en-US');
}

export function fmtCompact(n) {
  if (n === null || n === undefined) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  if (Number.isInteger(n)) return String(n);
  return String(+n.toFixed(2));
}

// The operator's currency (`--currency`): every amount the gateway reports is in it.
const SYMBOLS = { USD: '$', EUR: '€', GBP: '£', JPY: '¥' };
let currency = { code: 'USD', symbol: '$' };

export function setCurrency(code) {
  if (typeof code === 'string' && /^[A-Z]{3}$/.test(code)) currency = { code, symbol: SYMBOLS[code] || `${code} ` };
}

export function currencyCode() {
  return currency.code;
}

// An amount in the operator's currency (the name is historical: amounts are not converted).
export function fmtUsd(v) {
  if (v === null || v === undefined) return '–';
  const s = currency.symbol;
  if (v === 0) return `${s}0`;
  if (v < 0.01) return `${s}${v.toPrecision(2)}`;
  return `${s}${v.toFixed(2)}`;
}

export function fmtPct(x, digits = 0) {
  return `${(x * 100).toFixed(digits)} %`;
}

const pad = (n) => String(n).padStart(2, '0');

export function fmtTime(ms, withDate = true) {
  const d = new Date(ms);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (!withDate) return t;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
}

export function fmtAgo(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** `a, b , c` → ['a','b','c'] */
export function splitList(s) {
  return String(s || '')
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter(Boolean);
}

export function statusClass(status) {
  if (status >= 200 && status < 400) return 'ok';
  if (status === 429 || status === 499) return 'warn';
  return 'bad';
}

/** A pill showing a key's or provider's state. */
export function healthBadge(health, { enabled = true, status } = {}) {
  if (!enabled) return h('span', { class: 'badge muted', text: 'disabled' });
  if (status === 'error') return h('span', { class: 'badge bad', text: 'error' });
  const state = (health && health.state) || 'healthy';
  const cls = state === 'healthy' ? 'ok' : state === 'half_open' ? 'warn' : 'bad';
  const label = state === 'healthy' ? 'active' : state === 'half_open' ? 'probing' : 'ejected';
  const title = health && health.retry_in_ms ? `probe in ${Math.ceil(health.retry_in_ms / 1000)} s` : undefined;
  return h('span', { class: `badge ${cls}`, title, text: label });
}

// --- toasts ---

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : undefined }, message);
  box.append(t);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3500);
}

// --- dialogs ---

/**
 * Opens a modal form. `build(form)` returns the fields; `submit(form)` may throw to keep the dialog open
 * and show the message. Resolves with submit's result, or null when cancelled.
 */
export function formDialog({ title, build, submit, submitLabel = 'Save', id }) {
  return new Promise((resolve) => {
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h('form', { method: 'dialog', class: 'dialog-form', novalidate: true });
    const heading = h('h2', { id: `${id || 'dlg'}-title`, text: title });
    const cancel = h('button', { type: 'button', class: 'btn', text: 'Cancel' });
    const ok = h('button', { type: 'submit', class: 'btn primary', text: submitLabel });
    form.append(heading, ...[build(form)].flat(), error, h('div', { class: 'dialog-actions' }, cancel, ok));
    const dlg = h('dialog', { class: 'dialog', id, 'aria-labelledby': heading.id }, form);
    document.body.append(dlg);
    let result = null;
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      ok.disabled = true;
      error.hidden = true;
      try {
        result = await submit(form);
        dlg.close();
      } catch (e) {
        error.textContent = e.message || String(e);
        error.hidden = false;
      } finally {
        ok.disabled = false;
      }
    });
    dlg.showModal();
    const first = form.querySelector('input:not([disabled]):not([type=hidden]), select, textarea');
    if (first) first.focus();
  });
}

/** A yes/no question in a modal dialog (no native confirm(), so it is styled and testable). */
export function confirmDialog(message, { confirmLabel = 'Delete', danger = true } = {}) {
  return new Promise((resolve) => {
    let answer = false;
    const no = h('button', { type: 'button', class: 'btn', text: 'Cancel' });
    const yes = h('button', { type: 'button', class: `btn ${danger ? 'danger' : 'primary'}`, text: confirmLabel });
    const dlg = h(
      'dialog',
      { class: 'dialog confirm', 'aria-label': 'Confirm' },
      h('p', { text: message }),
      h('div', { class: 'dialog-actions' }, no, yes),
    );
    document.body.append(dlg);
    no.addEventListener('click', () => dlg.close());
    yes.addEventListener('click', () => {
      answer = true;
      dlg.close();
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(answer);
    });
    dlg.showModal();
    no.focus();
  });
}

/** A labelled form field. `input` is an element; `hint` an optional help text. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const hintEl = hint ? h('small', { class: 'hint', id: `${id}-hint`, text: hint }) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  if (input.type === 'checkbox') {
    return h('div', { class: 'field check' }, input, h('label', { for: id, text: label }), hintEl);
  }
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hintEl);
}

/** Reads hash query params (`#/logs?x=1`). */
export function hashParams() {
  const q = location.hash.split('?')[1] || '';
  return new URLSearchParams(q);
}

/** A heading row with actions. */
export function pageHeader(title, subtitle, ...actions) {
  return h(
    'div',
    { class: 'page-head' },
    h('div', {}, h('h1', { text: title }), subtitle ? h('p', { class: 'muted', text: subtitle }) : null),
    h('div', { class: 'actions' }, actions),
  );
}

/** A friendly placeholder for a list or chart with nothing to show. */
export function emptyState(text, ...extra) {
  return h('div', { class: 'empty' }, h('p', { text }), extra);
}
