// Entry point: the hash router. Each page module exports `render(main, ctx)`, which may return a
// cleanup function (stop polling) that runs when the page is left.
import { h, clear, toast, session, api, setCurrency } from './lib.js';
import * as providers from './providers.js';
import * as routing from './routing.js';
import * as dashboard from './dashboard.js';
import * as logs from './logs.js';
import * as keys from './keys.js';
import * as cache from './cache.js';
import * as mcp from './mcp.js';
import * as guardrails from './guardrails.js';

const pages = {
  providers: { title: 'Model Providers', render: providers.render },
  routing: { title: 'Routing', render: routing.render },
  dashboard: { title: 'Dashboard', render: dashboard.render },
  logs: { title: 'Logs', render: logs.render },
  keys: { title: 'Virtual Keys', render: keys.render },
  cache: { title: 'Cache', render: cache.render },
  mcp: { title: 'MCP', render: mcp.render },
  guardrails: { title: 'Guardrails', render: guardrails.render },
};

let cleanup = null;
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || 'dashboard', rest: parts.slice(1), params: new URLSearchParams(query) };
}

async function route() {
  const { name, rest, params } = parseHash();
  const page = pages[name];
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a page's cleanup must not break navigation */
    }
    cleanup = null;
  }
  const gen = ++generation;
  const main = document.getElementById('main');
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!page) {
    document.title = 'Not found · Switchyard';
    clear(main, h('h1', { text: 'Page not found' }), h('p', {}, h('a', { href: '#/dashboard', text: 'Go to the dashboard' })));
    return;
  }
  document.title = `${page.title} · Switchyard`;
  main.dataset.page = name;
  main.setAttribute('aria-busy', 'true');
  const ctx = { rest, params, alive: () => gen === generation };
  try {
    const c = await page.render(main, ctx);
    if (gen === generation) cleanup = typeof c === 'function' ? c : null;
    else if (typeof c === 'function') c();
  } catch (e) {
    if (gen === generation) {
      clear(main, h('h1', { text: page.title }), h('p', { class: 'form-error', role: 'alert', text: `Could not load: ${e.message}` }));
    }
  } finally {
    if (gen === generation) main.removeAttribute('aria-busy');
  }
}

let lastName = null;
window.addEventListener('hashchange', () => {
  const { name } = parseHash();
  const pageChanged = name !== lastName;
  lastName = name;
  route().then(() => {
    // Move focus to the content on page changes, for keyboard and screen reader users.
    if (pageChanged) document.getElementById('main').focus({ preventScroll: false });
  });
});
window.addEventListener('error', (e) => toast(`Unexpected error: ${e.message}`, 'error'));
window.addEventListener('unhandledrejection', (e) => toast(`Unexpected error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`, 'error'));

lastName = parseHash().name;
// The first page is on screen: a mark for load-time measurements (tests read it). Amounts need the
// operator's currency first (`/api/config`); a failed read keeps USD.
api('/api/config')
  .then((c) => setCurrency(c.currency))
  .catch(() => {})
  .then(() => route())
  .then(() => performance.mark('switchyard:ready'));

// With admin auth on, the top bar offers a log-out button.
session().then((s) => {
  if (!s.auth_required || !s.authenticated) return;
  const button = h('button', {
    type: 'button',
    class: 'btn small logout',
    text: `Log out${s.username ? ` (${s.username})` : ''}`,
    onclick: async () => {
      await fetch('/api/auth/logout', { method: 'POST', headers: { 'x-csrf-token': s.csrf_token || '' } });
      location.assign('/login');
    },
  });
  document.querySelector('.topbar').append(button);
});
