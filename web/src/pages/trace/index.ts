import { api, type Span } from '../../api';
import { clear, errorBox, formatDuration, formatTime, h } from '../../dom';
import { buildTrace } from '../../model';
import { navigate, type Nav } from '../../router';
import { wireCriticalPath } from './critical';
import { select } from './detail';
import { find, nextError, step } from './find';
import { flame } from './flame';
import { TraceState, type View } from './state';
import { statsTable } from './stats';
import { traceStats } from '../../analyze';
import { drawMinimap, drawRuler, key, level, refresh, schedule, setAll, wireMinimap } from './timeline';

// The trace page: a waterfall of the span tree (collapsible, keyboard
// driven, zoomable in time), find, the critical path, a flame graph and
// statistics, and a detail panel for the selected span. Its state (find,
// span, view, zoom, critical path) lives in the URL. One state object
// (state.ts); one module per view.
export async function tracePage(nav: Nav, id: string, local?: Span[]) {
  nav.show(h('p', { class: 'muted' }, 'Loading trace…'));
  let spans: Span[] | null;
  try {
    spans = local ?? (await api.trace(id, nav.signal));
  } catch (e) {
    nav.show(errorBox(e));
    return;
  }
  if (!spans || spans.length === 0) {
    nav.show(h('div', { class: 'empty' }, h('h1', null, 'Trace not found'),
      h('p', null, `No spans are stored for ${id}. Spans appear once their batch is committed (about a second), and are kept for the retention period.`),
      h('a', { href: '/', 'data-link': true }, 'Search traces')));
    return;
  }
  const t0 = performance.now();
  mount(new TraceState(nav, buildTrace(spans), !!local));
  document.body.dataset.renderMs = String(Math.round(performance.now() - t0));
}

// mount draws the page for s and wires its controls.
function mount(s: TraceState) {
  const { nav, t, local } = s;
  const onKey = (ev: KeyboardEvent) => {
    if (ev.key === '/' && document.activeElement !== s.findInput && !(document.activeElement instanceof HTMLInputElement)) {
      ev.preventDefault();
      s.findInput.focus();
    }
  };
  const onResize = () => { drawMinimap(s); drawRuler(s); schedule(s); };
  document.addEventListener('keydown', onKey);
  window.addEventListener('resize', onResize);
  nav.onLeave(() => { document.removeEventListener('keydown', onKey); window.removeEventListener('resize', onResize); cancelAnimationFrame(s.frame); });

  const tab = (v: View, label: string) => h('button', { type: 'button', class: `tab${s.view === v ? ' is-active' : ''}`, 'data-view': v, 'aria-pressed': String(s.view === v), onclick: () => setView(s, v) }, label);
  const rowsNote = t.rows.length !== t.spans.length
    ? ` in ${t.rows.length} rows (a client and a server reporting one call share a row)` : '';
  nav.show(
    h('div', { class: 'trace-head' },
      h('h1', null, h('span', { class: 'root-service' }, t.rootService), ': ', h('span', null, t.rootName)),
      h('div', { class: 'trace-meta' },
        h('span', null, 'Trace ', h('code', { class: 'trace-id' }, t.traceId)), local ? h('span', { class: 'chip' }, 'from file, not stored') : null,
        h('span', { class: 'trace-duration' }, `Duration ${formatDuration(t.duration)}`),
        h('span', { class: 'span-count' }, `${t.spans.length} span${t.spans.length === 1 ? '' : 's'}${rowsNote}`),
        h('span', null, `${t.services.length} services`), h('span', null, `Started ${formatTime(t.start)}`),
        t.error ? h('span', { class: 'error-mark' }, 'errors') : null,
        local ? null : h('a', { href: `/compare?a=${t.traceId}`, 'data-link': true }, 'Compare with…')),
      t.corrected ? h('p', { class: 'skew-note', role: 'note' },
        `Clock skew corrected on ${t.corrected} span${t.corrected === 1 ? '' : 's'} (marked ⇄): a server's clock disagreed with its client's, so its half and what it called were moved into the client's window. Durations are as reported.`) : null,
      t.orphans ? h('p', { class: 'orphan-note', role: 'note' },
        `${t.orphans} span${t.orphans === 1 ? '' : 's'} name${t.orphans === 1 ? 's' : ''} a parent that is not in this trace (marked "orphan"): it was not reported, not yet stored, or expired.`) : null,
      h('div', { class: 'trace-tools' },
        h('span', { class: 'tabs', role: 'group', 'aria-label': 'view' }, tab('timeline', 'Timeline'), tab('flame', 'Flame graph'), tab('stats', 'Statistics')),
        h('form', { class: 'find', role: 'search', onsubmit: (ev: Event) => { ev.preventDefault(); step(s, 1); } },
          s.findInput, s.findCount,
          h('button', { type: 'button', 'aria-label': 'previous match', onclick: () => step(s, -1) }, '↑'),
          h('button', { type: 'button', 'aria-label': 'next match', onclick: () => step(s, 1) }, '↓'),
          h('button', { type: 'button', class: 'next-error', onclick: () => nextError(s) }, 'Next error')),
        h('label', { class: 'cp-toggle' }, s.cpToggle, ' Critical path'),
        h('span', { class: 'actions' },
          h('button', { type: 'button', onclick: () => setAll(s, false), title: 'expand every span' }, 'Expand all'),
          h('button', { type: 'button', class: 'level-down', onclick: () => level(s, -1), title: 'collapse the deepest shown level' }, '− level'),
          h('button', { type: 'button', class: 'level-up', onclick: () => level(s, 1), title: 'show one more level' }, '+ level'),
          h('button', { type: 'button', onclick: () => setAll(s, true), title: 'collapse every subtree' }, 'Collapse all'),
          s.zoomReset,
          h('button', { type: 'button', onclick: () => download(s) }, 'Download JSON')))),
    h('div', { class: 'minimap-wrap' }, s.minimap, s.lens, s.zoomBox),
    h('div', { class: 'trace-layout' }, s.main, s.detail));

  s.findInput.addEventListener('input', () => find(s, true));
  wireCriticalPath(s);
  s.viewport.addEventListener('scroll', () => schedule(s));
  s.viewport.addEventListener('keydown', (ev) => key(s, ev));
  wireMinimap(s);
  s.zoomReset.hidden = s.zoom[0] <= 0 && s.zoom[1] >= t.duration;
  renderView(s);
  const want = nav.params.get('span');
  const first = (want && t.rows.find((r) => r.id === want)) || t.rows[0];
  if (s.findInput.value || s.matched.length) find(s, false);
  if (first && !s.matches.length) select(s, first, !!want);
}

// pushState keeps the page's state in the URL without re-rendering it.
export function pushState(s: TraceState) {
  const p = new URLSearchParams();
  if (s.findInput.value.trim()) p.set('find', s.findInput.value.trim());
  if (s.matched.length) p.set('matched', s.matched.join(','));
  if (s.selected) p.set('span', s.selected.id);
  if (s.view !== 'timeline') p.set('view', s.view);
  if (s.cp) p.set('cp', '1');
  if (s.zoom[0] > 0 || s.zoom[1] < s.t.duration) p.set('zoom', `${Math.round(s.zoom[0])},${Math.round(s.zoom[1])}`);
  const q = p.toString();
  navigate(location.pathname + (q ? `?${q}` : ''), { replace: true, render: false });
}

export function setView(s: TraceState, v: View) {
  s.view = v;
  pushState(s);
  document.querySelectorAll('.tabs .tab').forEach((b) => {
    const on = (b as HTMLElement).dataset.view === v;
    b.classList.toggle('is-active', on);
    b.setAttribute('aria-pressed', String(on));
  });
  renderView(s);
}

export function renderView(s: TraceState) {
  if (s.view === 'stats') {
    clear(s.main, statsTable(traceStats(s.t), s.color));
    return;
  }
  if (s.view === 'flame') {
    clear(s.main, h('div', { class: 'timeline' }, h('div', { class: 'tl-ruler flame-ruler' }, s.ruler), flame(s)));
    drawRuler(s);
    drawMinimap(s); // it shades what a zoom leaves out
    return;
  }
  clear(s.main, h('div', { class: 'timeline' },
    h('div', { class: 'tl-ruler' }, h('div', { class: 'tl-label-col' }, 'Service · span'), s.ruler), s.viewport));
  refresh(s);
}

export function redraw(s: TraceState) {
  if (s.view === 'timeline') refresh(s); else renderView(s);
}

export function download(s: TraceState) {
  const blob = new Blob([JSON.stringify(s.t.spans, null, 2)], { type: 'application/json' });
  const a = h('a', { href: URL.createObjectURL(blob), download: `trace-${s.t.traceId}.json` });
  document.body.append(a);
  a.click();
  a.remove();
}
