import './style.css';
import { api, type Span } from './api';
import { clear, errorBox, h } from './dom';
import { forgetToken, savedTenant, savedToken } from './session';
import { navigate, startRouter, type Route } from './router';
import { searchPage } from './pages/search';
import { tracePage } from './pages/trace/index';
import { comparePage } from './pages/trace/compare';
import { dependenciesPage } from './pages/dependencies';
import { pipelinePage } from './pages/pipeline';
import { servicePage, servicesPage } from './pages/services';

const app = document.getElementById('app')!;
const nav = document.getElementById('nav')!;

// A trace opened from a file is kept in memory only, never stored.
let uploaded: Span[] | null = null;
let dependenciesEnabled = true;
let environment = '';

// The one route table: every page, its title and what renders it.
const routes: Route[] = [
  { pattern: /^\/(index\.html)?$/, title: () => 'zipq · search', page: searchPage },
  { pattern: /^\/traces\/local$/, title: () => 'zipq · trace from file',
    page: (n) => uploaded ? tracePage(n, 'local', uploaded)
      : n.show(h('div', { class: 'empty' }, 'No file opened. Use "Open JSON" to view a trace from a file.')) },
  { pattern: /^\/traces\/([^/]+)$/, title: (m) => `zipq · trace ${decodeURIComponent(m[1])}`, page: (n) => tracePage(n, decodeURIComponent(n.match[1])) },
  { pattern: /^\/compare$/, title: () => 'zipq · compare traces', page: comparePage },
  { pattern: /^\/dependencies$/, title: () => 'zipq · dependencies', page: dependenciesPage },
  { pattern: /^\/services$/, title: () => 'zipq · services', page: servicesPage },
  { pattern: /^\/services\/([^/]+)$/, title: (m) => `zipq · ${decodeURIComponent(m[1])}`, page: servicePage },
  { pattern: /^\/pipeline$/, title: () => 'zipq · pipeline', page: pipelinePage },
];

function header(path: string) {
  const file = h('input', { type: 'file', accept: '.json,application/json', id: 'open-json', class: 'visually-hidden' });
  file.addEventListener('change', async () => {
    const f = file.files?.[0];
    if (!f) return;
    try {
      const data = JSON.parse(await f.text());
      const spans: Span[] = Array.isArray(data[0]) ? data[0] : data;
      if (!Array.isArray(spans) || !spans.every((s) => s && typeof s.traceId === 'string' && typeof s.id === 'string')) {
        throw new Error('expected a JSON list of Zipkin v2 spans (as "Download JSON" saves them)');
      }
      uploaded = spans;
      navigate('/traces/local');
    } catch (e) {
      clear(app, errorBox(e, 'Open a file saved with "Download JSON", or any Zipkin v2 JSON span list.'));
    } finally {
      file.value = '';
    }
  });
  const link = (href: string, text: string) => h('a', { href, 'data-link': true, class: path === href || (href !== '/' && path.startsWith(href)) ? 'active' : '' }, text);
  clear(nav, h('nav', null,
    h('a', { href: '/', 'data-link': true, class: 'brand' }, 'zipq'),
    link('/', 'Search'), link('/services', 'Services'), link('/compare', 'Compare'), dependenciesEnabled ? link('/dependencies', 'Dependencies') : null, link('/pipeline', 'Pipeline'),
    h('form', { class: 'goto', onsubmit: (ev: Event) => {
      ev.preventDefault();
      const id = ((ev.target as HTMLFormElement).elements.namedItem('traceId') as HTMLInputElement).value.trim();
      if (id) navigate(`/traces/${encodeURIComponent(id)}`);
    } }, h('input', { name: 'traceId', placeholder: 'trace ID', 'aria-label': 'trace ID', size: 20 })),
    h('label', { for: 'open-json', class: 'button' }, 'Open JSON'), file,
    environment ? h('span', { class: 'env', title: 'environment (/config.json)' }, environment) : null,
    savedTenant(sessionStorage) ? h('span', { class: 'env', title: 'tenant this tab reads (X-Scope-OrgID)' }, savedTenant(sessionStorage)) : null,
    savedToken(sessionStorage) ? h('button', { type: 'button', class: 'signout', title: 'forget the token this tab sends',
      onclick: () => { forgetToken(sessionStorage); navigate(location.pathname + location.search, { replace: true }); } }, 'Forget token') : null));
}

const start = () => startRouter(app, routes, {
  before: header,
  failed: (n, e) => n.show(e ? errorBox(e)
    : h('div', { class: 'empty' }, h('h1', null, 'Page not found'), h('a', { href: '/', 'data-link': true }, 'Search traces'))),
});
// /config.json first (its settings change the header and the pages); the
// UI still starts when it cannot be read.
api.config().then((c) => {
  dependenciesEnabled = c.dependency?.enabled !== false;
  environment = c.environment ?? '';
}).catch(() => {}).finally(start);
