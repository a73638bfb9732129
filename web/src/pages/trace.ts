import { api, type Endpoint, type Span } from '../api';
import { clear, errorBox, formatDuration, formatTime, h } from '../dom';
import { buildTrace, collapseBelow, countBelow, shownDepth, visibleRows, type Half, type Row, type Trace } from '../model';
import { criticalPath, findRows, niceTicks, traceStats, type Section, type Stat } from '../analyze';
import { ERROR_COLOR, palette } from '../palette';
import { navigate, type Nav } from '../router';

const ROW = 24; // px per timeline row; rows are virtualized for big traces
const FLAME_MAX = 3000; // flame graph blocks drawn at most
type View = 'timeline' | 'flame' | 'stats';

// The trace page: a waterfall of the span tree (collapsible, keyboard
// driven, zoomable in time), find, the critical path, a flame graph and
// statistics, and a detail panel for the selected span. Its state (find,
// span, view, zoom, critical path) lives in the URL.
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
  const trace = buildTrace(spans);
  new TraceView(nav, trace, !!local);
  document.body.dataset.renderMs = String(Math.round(performance.now() - t0));
}

class TraceView {
  collapsed = new Set<string>();
  rows: Row[] = [];
  selected?: Row;
  matches: Row[] = [];
  matchSet = new Set<Row>();
  current = -1;
  cp: Map<Row, Section[]> | null = null;
  view: View;
  zoom: [number, number]; // the shown window, µs relative to the trace start
  color: (s: string) => string;
  body = h('div', { class: 'tl-rows', role: 'tree', 'aria-label': 'spans' });
  spacer = h('div', { class: 'tl-spacer' });
  viewport = h('div', { class: 'tl-viewport', tabindex: 0, 'aria-label': 'timeline: arrows move, left/right collapse and expand, Enter opens, / finds' }, this.spacer, this.body);
  detail = h('aside', { class: 'detail', tabindex: -1, 'aria-label': 'span detail' }, h('p', { class: 'muted' }, 'Select a span to see its details.'));
  minimap = h('canvas', { class: 'minimap', height: 48, 'aria-label': 'minimap: drag across to zoom into a time window, click to scroll' });
  lens = h('div', { class: 'minimap-lens' });
  zoomBox = h('div', { class: 'minimap-zoom', hidden: true });
  ruler = h('div', { class: 'tl-bar-col tl-ticks' });
  findInput: HTMLInputElement;
  findCount = h('span', { class: 'find-count', 'aria-live': 'polite' });
  cpToggle: HTMLInputElement;
  main = h('div', { class: 'trace-main' });
  zoomReset = h('button', { type: 'button', class: 'zoom-reset', hidden: true, onclick: () => this.setZoom(0, this.t.duration) }, 'Reset zoom');
  frame = 0;

  constructor(readonly nav: Nav, readonly t: Trace, readonly local: boolean) {
    const p = nav.params;
    this.color = palette(t.rows.map((r) => r.service));
    this.view = (['flame', 'stats'].includes(p.get('view') ?? '') ? p.get('view') : 'timeline') as View;
    const z = (p.get('zoom') ?? '').split(',').map(Number);
    this.zoom = z.length === 2 && z[1] > z[0] && z[0] >= 0 ? [z[0], Math.min(z[1], t.duration)] : [0, t.duration];
    this.findInput = h('input', { type: 'search', name: 'find', placeholder: 'find: service, name, tag, id…  ( / )', 'aria-label': 'find in trace', value: p.get('find') ?? '', size: 28 });
    this.cpToggle = h('input', { type: 'checkbox', name: 'criticalPath', checked: p.get('cp') === '1' });
    const onKey = (ev: KeyboardEvent) => {
      if (ev.key === '/' && document.activeElement !== this.findInput && !(document.activeElement instanceof HTMLInputElement)) {
        ev.preventDefault();
        this.findInput.focus();
      }
    };
    const onResize = () => { this.drawMinimap(); this.drawRuler(); this.schedule(); };
    document.addEventListener('keydown', onKey);
    window.addEventListener('resize', onResize);
    nav.onLeave(() => { document.removeEventListener('keydown', onKey); window.removeEventListener('resize', onResize); cancelAnimationFrame(this.frame); });

    const view = (v: View, label: string) => h('button', { type: 'button', class: `tab${this.view === v ? ' is-active' : ''}`, 'data-view': v, 'aria-pressed': String(this.view === v), onclick: () => this.setView(v) }, label);
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
          h('span', { class: 'tabs', role: 'group', 'aria-label': 'view' }, view('timeline', 'Timeline'), view('flame', 'Flame graph'), view('stats', 'Statistics')),
          h('form', { class: 'find', role: 'search', onsubmit: (ev: Event) => { ev.preventDefault(); this.step(1); } },
            this.findInput, this.findCount,
            h('button', { type: 'button', 'aria-label': 'previous match', onclick: () => this.step(-1) }, '↑'),
            h('button', { type: 'button', 'aria-label': 'next match', onclick: () => this.step(1) }, '↓'),
            h('button', { type: 'button', class: 'next-error', onclick: () => this.nextError() }, 'Next error')),
          h('label', { class: 'cp-toggle' }, this.cpToggle, ' Critical path'),
          h('span', { class: 'actions' },
            h('button', { type: 'button', onclick: () => this.setAll(false), title: 'expand every span' }, 'Expand all'),
            h('button', { type: 'button', class: 'level-down', onclick: () => this.level(-1), title: 'collapse the deepest shown level' }, '− level'),
            h('button', { type: 'button', class: 'level-up', onclick: () => this.level(1), title: 'show one more level' }, '+ level'),
            h('button', { type: 'button', onclick: () => this.setAll(true), title: 'collapse every subtree' }, 'Collapse all'),
            this.zoomReset,
            h('button', { type: 'button', onclick: () => this.download() }, 'Download JSON')))),
      h('div', { class: 'minimap-wrap' }, this.minimap, this.lens, this.zoomBox),
      h('div', { class: 'trace-layout' }, this.main, this.detail));

    this.findInput.addEventListener('input', () => this.find(true));
    this.cpToggle.addEventListener('change', () => { this.cp = this.cpToggle.checked ? criticalPath(t) : null; this.pushState(); this.redraw(); });
    if (this.cpToggle.checked) this.cp = criticalPath(t);
    this.viewport.addEventListener('scroll', () => this.schedule());
    this.viewport.addEventListener('keydown', (ev) => this.key(ev));
    this.wireMinimap();
    this.zoomReset.hidden = this.zoom[0] <= 0 && this.zoom[1] >= t.duration;
    this.renderView();
    const want = p.get('span');
    const first = (want && t.rows.find((r) => r.id === want)) || t.rows[0];
    if (this.findInput.value) this.find(false);
    if (first && !(this.findInput.value && this.matches.length)) this.select(first, !!want);
  }

  // pushState keeps the page's state in the URL without re-rendering it.
  pushState() {
    const p = new URLSearchParams();
    if (this.findInput.value.trim()) p.set('find', this.findInput.value.trim());
    if (this.selected) p.set('span', this.selected.id);
    if (this.view !== 'timeline') p.set('view', this.view);
    if (this.cp) p.set('cp', '1');
    if (this.zoom[0] > 0 || this.zoom[1] < this.t.duration) p.set('zoom', `${Math.round(this.zoom[0])},${Math.round(this.zoom[1])}`);
    const q = p.toString();
    navigate(location.pathname + (q ? `?${q}` : ''), { replace: true, render: false });
  }

  setView(v: View) {
    this.view = v;
    this.pushState();
    document.querySelectorAll('.tabs .tab').forEach((b) => {
      const on = (b as HTMLElement).dataset.view === v;
      b.classList.toggle('is-active', on);
      b.setAttribute('aria-pressed', String(on));
    });
    this.renderView();
  }

  renderView() {
    if (this.view === 'stats') {
      clear(this.main, statsTable(traceStats(this.t), this.color));
      return;
    }
    if (this.view === 'flame') {
      clear(this.main, h('div', { class: 'timeline' }, h('div', { class: 'tl-ruler flame-ruler' }, this.ruler), this.flame()));
      this.drawRuler();
      this.drawMinimap(); // it shades what a zoom leaves out
      return;
    }
    clear(this.main, h('div', { class: 'timeline' },
      h('div', { class: 'tl-ruler' }, h('div', { class: 'tl-label-col' }, 'Service · span'), this.ruler), this.viewport));
    this.refresh();
  }

  redraw() {
    if (this.view === 'timeline') this.refresh(); else this.renderView();
  }

  // x maps a trace time (µs, absolute) to a percentage of the zoom window.
  x(ts: number): number {
    return ((ts - this.t.start - this.zoom[0]) / Math.max(1, this.zoom[1] - this.zoom[0])) * 100;
  }

  drawRuler() {
    const [a, b] = this.zoom;
    const ticks = niceTicks(b - a, 6);
    clear(this.ruler, ...ticks.map((v) => {
      const pct = (v / Math.max(1, b - a)) * 100;
      return h('span', { class: `tick${pct > 92 ? ' tick-end' : ''}`, style: `left:${pct}%` }, formatDuration(Math.round(a + v)));
    }));
  }

  refresh() {
    this.rows = visibleRows(this.t, this.collapsed);
    this.spacer.style.height = `${this.rows.length * ROW}px`;
    this.drawMinimap();
    this.drawRuler();
    this.renderRows();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.renderRows(); this.drawLens(); });
  }

  // renderRows draws only the rows in view (plus a margin), so a trace of
  // 10,000 spans costs the same to scroll as one of 50.
  renderRows() {
    if (this.view !== 'timeline') return;
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const from = Math.max(0, Math.floor(top / ROW) - 10);
    const to = Math.min(this.rows.length, Math.ceil((top + height) / ROW) + 10);
    const els: HTMLElement[] = [];
    for (let i = from; i < to; i++) els.push(this.rowEl(this.rows[i], i));
    this.body.style.transform = `translateY(${from * ROW}px)`;
    this.body.replaceChildren(...els);
    this.drawLens();
  }

  bar(cls: string, start: number | undefined, dur: number | undefined, color: string, title?: string): HTMLElement | null {
    if (start === undefined) return null;
    const left = this.x(start), right = this.x(start + (dur ?? 0));
    if (right < 0 || left > 100) return null;
    const l = Math.max(0, left), w = Math.max(0.15, Math.min(100, right) - l);
    return h('div', { class: cls, style: `left:${l}%;width:${w}%;background:${color}`, title });
  }

  rowEl(r: Row, i: number): HTMLElement {
    const hasKids = r.children.length > 0;
    const open = !this.collapsed.has(r.key);
    const color = r.error ? ERROR_COLOR : this.color(r.service);
    const toggle = hasKids
      ? h('button', { type: 'button', class: 'toggle', tabindex: -1, 'aria-expanded': String(open), 'aria-label': open ? 'collapse' : 'expand',
        onclick: (ev: Event) => { ev.stopPropagation(); this.toggle(r); } }, open ? '▾' : '▸')
      : h('span', { class: 'toggle-pad' });
    const client = r.halves.find((x) => x.side === 'client');
    const server = r.halves.find((x) => x.side === 'server');
    const merged = r.halves.length === 2 && client && server;
    const bars: (HTMLElement | null)[] = merged
      ? [this.bar('tl-bar tl-bar-client', client.start, client.duration, color, `${client.service} (client) ${formatDuration(client.duration)}`),
        this.bar('tl-bar tl-bar-server', server.start, server.duration, color, `${server.service} (server) ${formatDuration(server.duration)}`)]
      : [this.bar('tl-bar', r.timestamp, r.duration, color)];
    for (const sec of this.cp?.get(r) ?? []) bars.push(this.bar('cp-seg', sec.from, sec.to - sec.from, '', 'on the critical path'));
    const endPct = r.timestamp === undefined ? 0 : this.x(r.timestamp + (r.duration ?? 0));
    const startPct = r.timestamp === undefined ? 0 : this.x(r.timestamp);
    // The label goes right of the bar when there is room, else left of
    // it, else inside the bar's end (on a light pill, so it stays legible).
    const label = merged ? `${formatDuration(client.duration)} · server ${formatDuration(server.duration)}` : formatDuration(r.duration);
    const room = 98 - label.length * 1.2; // ~1.2 % of the bar column per character
    const labelPos = endPct < room ? `left:calc(${Math.max(0, endPct)}% + 4px)`
      : startPct > 100 - room ? `right:calc(${100 - startPct}% + 4px)`
        : endPct - startPct > 100 - room ? `right:calc(${Math.max(0, 100 - endPct)}% + 4px)` : 'right:4px';
    const cls = ['tl-row', r.error && 'is-error', this.selected === r && 'is-selected', this.matchSet.has(r) && 'is-match',
      this.matches[this.current] === r && 'is-current', this.cp?.has(r) && 'on-cp'].filter(Boolean).join(' ');
    return h('div', {
      class: cls, role: 'treeitem', 'aria-level': r.depth + 1, 'aria-selected': String(this.selected === r), 'aria-expanded': hasKids ? String(open) : undefined,
      'data-span-id': r.id, 'data-row': i, style: `height:${ROW}px`, onclick: () => this.select(r),
    },
    h('div', { class: 'tl-label-col', style: `padding-left:${r.depth * 14}px`, title: `${r.service} ${r.name}${r.remoteService ? ` → ${r.remoteService}` : ''}` }, toggle,
      h('span', { class: 'svc-dot', style: `background:${this.color(r.service)}` }),
      h('span', { class: 'svc-name' }, r.service), ' ', h('span', { class: 'span-name' }, r.name),
      r.remoteService ? h('span', { class: 'remote' }, ` → ${r.remoteService}`) : null,
      r.orphanOf ? h('span', { class: 'orphan', title: `parent ${r.orphanOf} is not in this trace` }, 'orphan') : null,
      r.skewShift ? h('span', { class: 'skew', title: `clock skew corrected: server side moved ${formatDuration(r.skewShift)}` }, ' ⇄') : null,
      r.skew ? h('span', { class: 'skew', title: `starts ${formatDuration(r.skew)} before its parent: clock skew` }, ' ⚠') : null,
      hasKids && !open ? h('span', { class: 'muted' }, ` (+${countBelow(r)})`) : null),
    h('div', { class: 'tl-bar-col' }, ...bars, h('span', { class: 'tl-dur', style: labelPos }, label)));
  }

  toggle(r: Row, open?: boolean) {
    const isOpen = !this.collapsed.has(r.key);
    if (open === isOpen || !r.children.length) return;
    if (isOpen) this.collapsed.add(r.key); else this.collapsed.delete(r.key);
    this.refresh();
  }

  setAll(collapse: boolean) {
    this.collapsed = collapse ? collapseBelow(this.t, 0) : new Set();
    this.redraw();
  }

  // level shows one level more (+1) or less (-1) than the deepest shown.
  level(delta: number) {
    const d = Math.max(0, shownDepth(this.t, this.collapsed) + delta);
    this.collapsed = collapseBelow(this.t, d);
    this.redraw();
  }

  select(r: Row, scroll = false) {
    this.selected = r;
    // Open the ancestors so the row is on screen.
    let opened = false;
    for (let a = r.parent; a; a = a.parent) if (this.collapsed.delete(a.key)) opened = true;
    if (opened) this.refresh();
    if (scroll) this.scrollTo(r); else this.renderRows();
    clear(this.detail, h('button', { type: 'button', class: 'detail-close', 'aria-label': 'close the span detail',
      onclick: () => this.detail.classList.remove('has-span') }, '×'), spanDetail(r, this.t));
    this.detail.classList.add('has-span');
    this.pushState();
  }

  scrollTo(r: Row) {
    const i = this.rows.indexOf(r);
    if (i < 0 || this.view !== 'timeline') return;
    const top = i * ROW, vh = this.viewport.clientHeight || 600;
    if (top < this.viewport.scrollTop || top + ROW > this.viewport.scrollTop + vh) this.viewport.scrollTop = top - vh / 3;
    this.renderRows();
  }

  find(fromInput: boolean) {
    const t0 = performance.now();
    const q = this.findInput.value;
    this.matches = findRows(this.t, q);
    this.matchSet = new Set(this.matches);
    this.current = this.matches.length ? 0 : -1;
    this.findCount.textContent = q.trim() ? (this.matches.length ? `1 of ${this.matches.length}` : 'no match') : '';
    if (this.matches.length) this.select(this.matches[0], true);
    else { this.renderRows(); if (fromInput) this.pushState(); }
    this.drawMinimap();
    document.body.dataset.findMs = String(Math.round(performance.now() - t0));
  }

  step(d: number) {
    if (!this.matches.length) { this.find(false); return; }
    this.current = (this.current + d + this.matches.length) % this.matches.length;
    this.findCount.textContent = `${this.current + 1} of ${this.matches.length}`;
    this.select(this.matches[this.current], true);
  }

  nextError() {
    const all = this.t.rows;
    const from = this.selected ? all.indexOf(this.selected) : -1;
    for (let k = 1; k <= all.length; k++) {
      const r = all[(from + k) % all.length];
      if (r.error) { this.select(r, true); return; }
    }
    this.findCount.textContent = 'no errors in this trace';
  }

  key(ev: KeyboardEvent) {
    const i = this.selected ? this.rows.indexOf(this.selected) : -1;
    const go = (j: number) => { const r = this.rows[Math.max(0, Math.min(this.rows.length - 1, j))]; if (r) this.select(r, true); };
    switch (ev.key) {
      case 'ArrowDown': go(i + 1); break;
      case 'ArrowUp': go(i - 1); break;
      case 'ArrowRight': if (this.selected) { if (this.collapsed.has(this.selected.key)) this.toggle(this.selected, true); else go(i + 1); } break;
      case 'ArrowLeft':
        if (this.selected) {
          if (this.selected.children.length && !this.collapsed.has(this.selected.key)) this.toggle(this.selected, false);
          else if (this.selected.parent) this.select(this.selected.parent, true);
        }
        break;
      case 'Enter': this.detail.focus(); this.detail.scrollIntoView({ block: 'nearest' }); break;
      default: return;
    }
    ev.preventDefault();
  }

  setZoom(a: number, b: number) {
    const d = this.t.duration;
    a = Math.max(0, Math.min(a, d));
    b = Math.max(a + Math.max(1, d / 10_000), Math.min(b, d));
    this.zoom = [a, b];
    this.zoomReset.hidden = a <= 0 && b >= d;
    this.pushState();
    this.redraw();
  }

  // The minimap: a click scrolls the timeline there; a drag across picks
  // the time window to zoom into. The ruler zooms by dragging as well.
  wireMinimap() {
    let from: number | null = null;
    const frac = (ev: MouseEvent, el: Element) => { const b = el.getBoundingClientRect(); return [(ev.clientX - b.left) / b.width, (ev.clientY - b.top) / b.height]; };
    this.minimap.addEventListener('mousedown', (ev) => { from = frac(ev, this.minimap)[0]; });
    this.minimap.addEventListener('mousemove', (ev) => {
      if (from === null || ev.buttons !== 1) return;
      const to = frac(ev, this.minimap)[0];
      Object.assign(this.zoomBox.style, { left: `${Math.min(from, to) * 100}%`, width: `${Math.abs(to - from) * 100}%` });
      this.zoomBox.hidden = Math.abs(to - from) < 0.01;
    });
    this.minimap.addEventListener('mouseup', (ev) => {
      const [to, y] = frac(ev, this.minimap);
      this.zoomBox.hidden = true;
      if (from === null) return;
      const a = Math.min(from, to), b = Math.max(from, to);
      from = null;
      if (b - a >= 0.01) { this.setZoom(a * this.t.duration, b * this.t.duration); return; }
      this.viewport.scrollTop = y * this.rows.length * ROW - this.viewport.clientHeight / 2;
    });
    let rFrom: number | null = null;
    this.ruler.addEventListener('mousedown', (ev) => { rFrom = frac(ev, this.ruler)[0]; ev.preventDefault(); });
    this.ruler.addEventListener('mouseup', (ev) => {
      if (rFrom === null) return;
      const to = frac(ev, this.ruler)[0];
      const a = Math.min(rFrom, to), b = Math.max(rFrom, to);
      rFrom = null;
      const [z0, z1] = this.zoom;
      if (b - a >= 0.01) this.setZoom(z0 + a * (z1 - z0), z0 + b * (z1 - z0));
    });
  }

  drawMinimap() {
    const c = this.minimap;
    const w = (c.width = c.clientWidth || 800);
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.clearRect(0, 0, w, c.height);
    const rows = this.view === 'timeline' ? this.rows : this.t.rows;
    const n = rows.length || 1;
    const span = this.t.duration || 1;
    const rowH = Math.max(c.height / n, 1);
    const paint = (r: Row, i: number, color: string) => {
      ctx.fillStyle = color;
      const x = r.timestamp !== undefined ? ((r.timestamp - this.t.start) / span) * w : 0;
      ctx.fillRect(x, (i / n) * c.height, Math.max(1, ((r.duration ?? 0) / span) * w), rowH);
    };
    rows.forEach((r, i) => paint(r, i, this.color(r.service)));
    // Errors and find matches drawn last, so a single one still shows.
    rows.forEach((r, i) => { if (r.error) paint(r, i, ERROR_COLOR); });
    rows.forEach((r, i) => { if (this.matchSet.has(r)) paint(r, i, '#111'); });
    const [a, b] = this.zoom;
    if (a > 0 || b < this.t.duration) {
      ctx.fillStyle = 'rgba(255,255,255,.65)';
      ctx.fillRect(0, 0, (a / span) * w, c.height);
      ctx.fillRect((b / span) * w, 0, w, c.height);
    }
    this.drawLens();
  }

  drawLens() {
    const total = this.rows.length * ROW || 1;
    const top = this.viewport.scrollTop / total;
    const size = Math.min(1, (this.viewport.clientHeight || total) / total);
    this.lens.style.top = `${top * 100}%`;
    this.lens.style.height = `${size * 100}%`;
    this.lens.hidden = this.view !== 'timeline';
  }

  // flame draws each row as a block under its parent, x by time (the
  // zoom window applies), one level per 22 px. At most FLAME_MAX blocks,
  // the widest: tens of thousands of positioned elements take seconds to
  // lay out, and the narrowest are the ones a zoom brings back.
  flame(): HTMLElement {
    const rows = visibleRows(this.t, this.collapsed);
    const depth = Math.max(0, ...rows.map((r) => r.depth)) + 1;
    const box = h('div', { class: 'flame', style: `height:${depth * 22}px`, role: 'list', 'aria-label': 'flame graph' });
    const width = this.main.clientWidth || 1000;
    const blocks: { r: Row; left: number; w: number }[] = [];
    for (const r of rows) {
      if (r.timestamp === undefined) continue;
      const l = this.x(r.timestamp), rr = this.x(r.timestamp + (r.duration ?? 0));
      if (rr < 0 || l > 100 || ((rr - l) / 100) * width < 0.5) continue;
      const left = Math.max(0, l);
      blocks.push({ r, left, w: Math.min(100, rr) - left });
    }
    const shown = blocks.length > FLAME_MAX ? [...blocks].sort((a, b) => b.w - a.w).slice(0, FLAME_MAX) : blocks;
    box.append(...shown.map(({ r, left, w }) => {
      const cls = ['flame-block', r.error && 'is-error', this.cp?.has(r) && 'on-cp', this.matchSet.has(r) && 'is-match', this.selected === r && 'is-selected'].filter(Boolean).join(' ');
      return h('div', { class: cls, role: 'listitem', 'data-span-id': r.id, title: `${r.service} ${r.name} ${formatDuration(r.duration)}`,
        style: `left:${left}%;width:${w}%;top:${r.depth * 22}px;background:${r.error ? ERROR_COLOR : this.color(r.service)}`,
        onclick: () => { this.select(r); this.renderView(); } }, `${r.service} ${r.name}`);
    }));
    const hidden = blocks.length - shown.length;
    return h('div', null, hidden ? h('p', { class: 'muted flame-note' },
      `The ${FLAME_MAX.toLocaleString()} widest of ${blocks.length.toLocaleString()} spans are drawn; drag across the minimap or the ruler to zoom in and see the ${hidden.toLocaleString()} narrower ones.`) : null, box);
  }

  download() {
    const blob = new Blob([JSON.stringify(this.t.spans, null, 2)], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `trace-${this.t.traceId}.json` });
    document.body.append(a);
    a.click();
    a.remove();
  }
}

function statsTable(stats: Stat[], color: (s: string) => string): HTMLElement {
  type Key = 'service' | 'name' | 'count' | 'total' | 'self' | 'min' | 'avg' | 'max' | 'errors';
  const cols: [Key, string][] = [['service', 'service'], ['name', 'span name'], ['count', 'count'], ['total', 'total'], ['self', 'self time'],
    ['min', 'min'], ['avg', 'avg'], ['max', 'max'], ['errors', 'errors']];
  let by: Key = 'self', desc = true;
  const tbody = h('tbody');
  const head = h('tr');
  const draw = () => {
    const sorted = [...stats].sort((a, b) => {
      const x = a[by], y = b[by];
      const c = typeof x === 'string' ? x.localeCompare(y as string) : (x as number) - (y as number);
      return desc ? -c : c;
    });
    clear(head, ...cols.map(([k, label]) => h('th', { 'aria-sort': k === by ? (desc ? 'descending' : 'ascending') : 'none' },
      h('button', { type: 'button', class: 'sort', 'data-sort': k, onclick: () => { desc = k === by ? !desc : typeof stats[0]?.[k] !== 'string'; by = k; draw(); } },
        label, k === by ? (desc ? ' ▾' : ' ▴') : ''))));
    const d = (v: number) => h('td', { class: 'num' }, formatDuration(Math.round(v)));
    clear(tbody, ...sorted.map((s) => h('tr', { class: s.errors ? 'is-error' : '' },
      h('td', null, h('span', { class: 'svc-dot', style: `background:${color(s.service)}` }), ' ', s.service), h('td', null, s.name),
      h('td', { class: 'num' }, s.count), d(s.total), d(s.self), d(s.min), d(s.avg), d(s.max), h('td', { class: 'num' }, s.errors))));
  };
  draw();
  return h('div', { class: 'stats-wrap' }, h('table', { class: 'stats' }, h('thead', null, head), tbody),
    h('p', { class: 'muted' }, 'Self time: a span\'s duration minus the time its children run. Durations of merged rows are the client\'s.'));
}

function endpoint(e?: Endpoint): string {
  if (!e) return '';
  const addr = e.ipv4 ?? (e.ipv6 ? `[${e.ipv6}]` : '');
  return [e.serviceName, addr && (e.port ? `${addr}:${e.port}` : addr)].filter(Boolean).join(' @ ');
}

const halfLabel = (x: Half) => `${x.service || 'unknown'} (${x.side})`;

function spanDetail(r: Row, t: Trace): HTMLElement {
  const kv = (k: string, v: Node | string | undefined) => v ? h('tr', null, h('th', null, k), h('td', null, v)) : null;
  const rel = (ts: number) => formatDuration(ts - t.start);
  const merged = r.halves.length > 1;
  const tagRows = r.halves.flatMap((x) => Object.entries(x.span.tags ?? {}).map(([k, v]) => ({ k, v, from: x })))
    .sort((a, b) => a.k.localeCompare(b.k) || a.from.side.localeCompare(b.from.side));
  return h('div', { class: 'span-detail', tabindex: -1 },
    h('h2', null, h('span', { class: 'svc-name' }, r.service), ': ', h('span', { class: 'span-name' }, r.name),
      r.remoteService ? h('span', { class: 'remote' }, ` → ${r.remoteService}`) : null),
    r.orphanOf ? h('p', { class: 'orphan-note' }, `Orphan: parent ${r.orphanOf} is not in this trace.`) : null,
    r.skewShift ? h('p', { class: 'skew-note' }, `Clock skew corrected: the server half and its subtree were moved ${formatDuration(r.skewShift)} to fit inside the client's call. Times below are corrected; durations are as reported.`) : null,
    r.skew ? h('p', { class: 'skew-note' }, `Starts ${formatDuration(r.skew)} before its parent: the hosts' clocks are skewed.`) : null,
    h('table', { class: 'kv' }, h('tbody', null,
      kv('Kind', r.kind ?? 'local'),
      kv('Span ID', h('code', null, r.id)), kv('Parent ID', r.parentId ? h('code', null, r.parentId) : undefined),
      kv('Trace ID', h('code', null, t.traceId)),
      kv('Start', r.timestamp ? h('span', { class: 'nowrap' }, `${formatTime(r.timestamp)} (+${rel(r.timestamp)})`) : undefined),
      ...(merged
        ? r.halves.map((x) => kv(`${x.side} ${x.service}`, h('span', { class: 'nowrap' },
          `${formatDuration(x.duration)} from +${x.start !== undefined ? rel(x.start) : '?'}`)))
        : [kv('Duration', h('span', { class: 'nowrap' }, formatDuration(r.duration)))]),
      ...r.halves.map((x) => kv(`${merged ? x.side + ' ' : ''}local endpoint`, endpoint(x.span.localEndpoint))),
      ...r.halves.map((x) => kv(`${merged ? x.side + ' ' : ''}remote endpoint`, endpoint(x.span.remoteEndpoint))))),
    h('h3', null, 'Tags'),
    tagRows.length
      ? h('table', { class: 'kv tags' }, h('tbody', null, ...tagRows.map(({ k, v, from }) =>
        h('tr', { class: k === 'error' ? 'is-error' : '' }, h('th', null, k), h('td', null, h('pre', null, v)),
          merged ? h('td', { class: 'from' }, halfLabel(from)) : null))))
      : h('p', { class: 'muted' }, 'No tags.'),
    h('h3', null, 'Annotations'),
    r.annotations.length
      ? h('table', { class: 'kv annotations' }, h('tbody', null, ...r.annotations.map((a) =>
        h('tr', null, h('th', { class: 'nowrap' }, `+${rel(a.corrected)}`), h('td', null, a.value), h('td', { class: 'from' }, `${a.service} (${a.side})`)))))
      : h('p', { class: 'muted' }, 'No annotations.'));
}
