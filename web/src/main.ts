import './style.css';
import { api, type Span } from './api';
import { clear, errorBox, h } from './dom';
import { leave, navigate, startRouter } from './router';
import { searchPage } from './pages/search';
import { tracePage } from './pages/trace';
import { dependenciesPage } from './pages/dependencies';
import { pipelinePage } from './pages/pipeline';

const app = document.getElementById('app')!;
const nav = document.getElementById('nav')!;

// A trace opened from a file is kept in memory only, never stored.
let uploaded: Span[] | null = null;

function header() {
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
  const link = (href: string, text: string) => h('a', { href, 'data-link': true, class: location.pathname === href || (href !== '/' && location.pathname.startsWith(href)) ? 'active' : '' }, text);
  clear(nav, h('nav', null,
    h('a', { href: '/', 'data-link': true, class: 'brand' }, 'zipq'),
    link('/', 'Search'), link('/dependencies', 'Dependencies'), link('/pipeline', 'Pipeline'),
    h('form', { class: 'goto', onsubmit: (ev: Event) => {
      ev.preventDefault();
      const id = ((ev.target as HTMLFormElement).elements.namedItem('traceId') as HTMLInputElement).value.trim();
      if (id) navigate(`/traces/${encodeURIComponent(id)}`);
    } }, h('input', { name: 'traceId', placeholder: 'trace ID', 'aria-label': 'trace ID', size: 20 })),
    h('label', { for: 'open-json', class: 'button' }, 'Open JSON'), file));
}

async function route() {
  leave();
  header();
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  try {
    if (path === '/' || path === '/index.html') {
      document.title = 'zipq · search';
      await searchPage(app, params);
    } else if (path === '/traces/local') {
      document.title = 'zipq · trace from file';
      if (uploaded) await tracePage(app, 'local', uploaded);
      else clear(app, h('div', { class: 'empty' }, 'No file opened. Use "Open JSON" to view a trace from a file.'));
    } else if (path.startsWith('/traces/')) {
      const id = decodeURIComponent(path.slice('/traces/'.length));
      document.title = `zipq · trace ${id}`;
      await tracePage(app, id);
    } else if (path === '/dependencies') {
      document.title = 'zipq · dependencies';
      await dependenciesPage(app, params);
    } else if (path === '/pipeline') {
      document.title = 'zipq · pipeline';
      await pipelinePage(app);
    } else {
      clear(app, h('div', { class: 'empty' }, h('h1', null, 'Page not found'), h('a', { href: '/', 'data-link': true }, 'Search traces')));
    }
  } catch (e) {
    clear(app, errorBox(e));
  }
}

api.config().then((c) => { if (c.environment) document.title += ` (${c.environment})`; }).catch(() => {});
startRouter(route);
