import { clear, formatDuration, h } from '../../dom';
import { collapseBelow, countBelow, shownDepth, visibleRows, type Row } from '../../model';
import { niceTicks } from '../../analyze';
import { ERROR_COLOR } from '../../palette';
import { select } from './detail';
import { pushState, redraw } from './index';
import { ROW, type TraceState } from './state';

// The timeline: a virtualized waterfall of the rows in view, its ruler,
// keyboard navigation, collapse, and the minimap with its time zoom.

export function drawRuler(s: TraceState) {
  const [a, b] = s.zoom;
  const ticks = niceTicks(b - a, 6);
  clear(s.ruler, ...ticks.map((v) => {
    const pct = (v / Math.max(1, b - a)) * 100;
    return h('span', { class: `tick${pct > 92 ? ' tick-end' : ''}`, style: `left:${pct}%` }, formatDuration(Math.round(a + v)));
  }));
}

export function refresh(s: TraceState) {
  s.rows = visibleRows(s.t, s.collapsed);
  s.spacer.style.height = `${s.rows.length * ROW}px`;
  drawMinimap(s);
  drawRuler(s);
  renderRows(s);
}

export function schedule(s: TraceState) {
  if (s.frame) return;
  s.frame = requestAnimationFrame(() => { s.frame = 0; renderRows(s); drawLens(s); });
}

// renderRows draws only the rows in view (plus a margin), so a trace of
// 10,000 spans costs the same to scroll as one of 50.
export function renderRows(s: TraceState) {
  if (s.view !== 'timeline') return;
  const top = s.viewport.scrollTop;
  const height = s.viewport.clientHeight || 600;
  const from = Math.max(0, Math.floor(top / ROW) - 10);
  const to = Math.min(s.rows.length, Math.ceil((top + height) / ROW) + 10);
  const els: HTMLElement[] = [];
  for (let i = from; i < to; i++) els.push(rowEl(s, s.rows[i], i));
  s.body.style.transform = `translateY(${from * ROW}px)`;
  s.body.replaceChildren(...els);
  drawLens(s);
}

export function bar(s: TraceState, cls: string, start: number | undefined, dur: number | undefined, color: string, title?: string): HTMLElement | null {
  if (start === undefined) return null;
  const left = s.x(start), right = s.x(start + (dur ?? 0));
  if (right < 0 || left > 100) return null;
  const l = Math.max(0, left), w = Math.max(0.15, Math.min(100, right) - l);
  return h('div', { class: cls, style: `left:${l}%;width:${w}%;background:${color}`, title });
}

export function rowEl(s: TraceState, r: Row, i: number): HTMLElement {
  const hasKids = r.children.length > 0;
  const open = !s.collapsed.has(r.key);
  const color = r.error ? ERROR_COLOR : s.color(r.service);
  const toggleEl = hasKids
    ? h('button', { type: 'button', class: 'toggle', tabindex: -1, 'aria-expanded': String(open), 'aria-label': open ? 'collapse' : 'expand',
      onclick: (ev: Event) => { ev.stopPropagation(); toggle(s, r); } }, open ? '▾' : '▸')
    : h('span', { class: 'toggle-pad' });
  const client = r.halves.find((x) => x.side === 'client');
  const server = r.halves.find((x) => x.side === 'server');
  const merged = r.halves.length === 2 && client && server;
  const bars: (HTMLElement | null)[] = merged
    ? [bar(s, 'tl-bar tl-bar-client', client.start, client.duration, color, `${client.service} (client) ${formatDuration(client.duration)}`),
      bar(s, 'tl-bar tl-bar-server', server.start, server.duration, color, `${server.service} (server) ${formatDuration(server.duration)}`)]
    : [bar(s, 'tl-bar', r.timestamp, r.duration, color)];
  for (const sec of s.cp?.get(r) ?? []) bars.push(bar(s, 'cp-seg', sec.from, sec.to - sec.from, '', 'on the critical path'));
  const endPct = r.timestamp === undefined ? 0 : s.x(r.timestamp + (r.duration ?? 0));
  const startPct = r.timestamp === undefined ? 0 : s.x(r.timestamp);
  // The label goes right of the bar when there is room, else left of
  // it, else inside the bar's end (on a light pill, so it stays legible).
  const label = merged ? `${formatDuration(client.duration)} · server ${formatDuration(server.duration)}` : formatDuration(r.duration);
  const room = 98 - label.length * 1.2; // ~1.2 % of the bar column per character
  const labelPos = endPct < room ? `left:calc(${Math.max(0, endPct)}% + 4px)`
    : startPct > 100 - room ? `right:calc(${100 - startPct}% + 4px)`
      : endPct - startPct > 100 - room ? `right:calc(${Math.max(0, 100 - endPct)}% + 4px)` : 'right:4px';
  const cls = ['tl-row', r.error && 'is-error', s.selected === r && 'is-selected', s.matchSet.has(r) && 'is-match',
    s.matches[s.current] === r && 'is-current', s.cp?.has(r) && 'on-cp'].filter(Boolean).join(' ');
  return h('div', {
    class: cls, role: 'treeitem', 'aria-level': r.depth + 1, 'aria-selected': String(s.selected === r), 'aria-expanded': hasKids ? String(open) : undefined,
    'data-span-id': r.id, 'data-row': i, style: `height:${ROW}px`, onclick: () => select(s, r),
  },
  h('div', { class: 'tl-label-col', style: `padding-left:${r.depth * 14}px`, title: `${r.service} ${r.name}${r.remoteService ? ` → ${r.remoteService}` : ''}` }, toggleEl,
    h('span', { class: 'svc-dot', style: `background:${s.color(r.service)}` }),
    h('span', { class: 'svc-name' }, r.service), ' ', h('span', { class: 'span-name' }, r.name),
    r.remoteService ? h('span', { class: 'remote' }, ` → ${r.remoteService}`) : null,
    r.orphanOf ? h('span', { class: 'orphan', title: `parent ${r.orphanOf} is not in this trace` }, 'orphan') : null,
    r.skewShift ? h('span', { class: 'skew', title: `clock skew corrected: server side moved ${formatDuration(r.skewShift)}` }, ' ⇄') : null,
    r.skew ? h('span', { class: 'skew', title: `starts ${formatDuration(r.skew)} before its parent: clock skew` }, ' ⚠') : null,
    hasKids && !open ? h('span', { class: 'muted' }, ` (+${countBelow(r)})`) : null),
  h('div', { class: 'tl-bar-col' }, ...bars, h('span', { class: 'tl-dur', style: labelPos }, label)));
}

export function toggle(s: TraceState, r: Row, open?: boolean) {
  const isOpen = !s.collapsed.has(r.key);
  if (open === isOpen || !r.children.length) return;
  if (isOpen) s.collapsed.add(r.key); else s.collapsed.delete(r.key);
  refresh(s);
}

export function setAll(s: TraceState, collapse: boolean) {
  s.collapsed = collapse ? collapseBelow(s.t, 0) : new Set();
  redraw(s);
}

// level shows one level more (+1) or less (-1) than the deepest shown.
export function level(s: TraceState, delta: number) {
  const d = Math.max(0, shownDepth(s.t, s.collapsed) + delta);
  s.collapsed = collapseBelow(s.t, d);
  redraw(s);
}

export function scrollTo(s: TraceState, r: Row) {
  const i = s.rows.indexOf(r);
  if (i < 0 || s.view !== 'timeline') return;
  const top = i * ROW, vh = s.viewport.clientHeight || 600;
  if (top < s.viewport.scrollTop || top + ROW > s.viewport.scrollTop + vh) s.viewport.scrollTop = top - vh / 3;
  renderRows(s);
}

export function key(s: TraceState, ev: KeyboardEvent) {
  const i = s.selected ? s.rows.indexOf(s.selected) : -1;
  const go = (j: number) => { const r = s.rows[Math.max(0, Math.min(s.rows.length - 1, j))]; if (r) select(s, r, true); };
  switch (ev.key) {
    case 'ArrowDown': go(i + 1); break;
    case 'ArrowUp': go(i - 1); break;
    case 'ArrowRight': if (s.selected) { if (s.collapsed.has(s.selected.key)) toggle(s, s.selected, true); else go(i + 1); } break;
    case 'ArrowLeft':
      if (s.selected) {
        if (s.selected.children.length && !s.collapsed.has(s.selected.key)) toggle(s, s.selected, false);
        else if (s.selected.parent) select(s, s.selected.parent, true);
      }
      break;
    case 'Enter': s.detail.focus(); s.detail.scrollIntoView({ block: 'nearest' }); break;
    default: return;
  }
  ev.preventDefault();
}

export function setZoom(s: TraceState, a: number, b: number) {
  const d = s.t.duration;
  a = Math.max(0, Math.min(a, d));
  b = Math.max(a + Math.max(1, d / 10_000), Math.min(b, d));
  s.zoom = [a, b];
  s.zoomReset.hidden = a <= 0 && b >= d;
  pushState(s);
  redraw(s);
}

// The minimap: a click scrolls the timeline there; a drag across picks
// the time window to zoom into. The ruler zooms by dragging as well.
export function wireMinimap(s: TraceState) {
  let from: number | null = null;
  const frac = (ev: MouseEvent, el: Element) => { const b = el.getBoundingClientRect(); return [(ev.clientX - b.left) / b.width, (ev.clientY - b.top) / b.height]; };
  s.minimap.addEventListener('mousedown', (ev) => { from = frac(ev, s.minimap)[0]; });
  s.minimap.addEventListener('mousemove', (ev) => {
    if (from === null || ev.buttons !== 1) return;
    const to = frac(ev, s.minimap)[0];
    Object.assign(s.zoomBox.style, { left: `${Math.min(from, to) * 100}%`, width: `${Math.abs(to - from) * 100}%` });
    s.zoomBox.hidden = Math.abs(to - from) < 0.01;
  });
  s.minimap.addEventListener('mouseup', (ev) => {
    const [to, y] = frac(ev, s.minimap);
    s.zoomBox.hidden = true;
    if (from === null) return;
    const a = Math.min(from, to), b = Math.max(from, to);
    from = null;
    if (b - a >= 0.01) { setZoom(s, a * s.t.duration, b * s.t.duration); return; }
    s.viewport.scrollTop = y * s.rows.length * ROW - s.viewport.clientHeight / 2;
  });
  let rFrom: number | null = null;
  s.ruler.addEventListener('mousedown', (ev) => { rFrom = frac(ev, s.ruler)[0]; ev.preventDefault(); });
  s.ruler.addEventListener('mouseup', (ev) => {
    if (rFrom === null) return;
    const to = frac(ev, s.ruler)[0];
    const a = Math.min(rFrom, to), b = Math.max(rFrom, to);
    rFrom = null;
    const [z0, z1] = s.zoom;
    if (b - a >= 0.01) setZoom(s, z0 + a * (z1 - z0), z0 + b * (z1 - z0));
  });
}

export function drawMinimap(s: TraceState) {
  const c = s.minimap;
  const w = (c.width = c.clientWidth || 800);
  const ctx = c.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, w, c.height);
  const rows = s.view === 'timeline' ? s.rows : s.t.rows;
  const n = rows.length || 1;
  const span = s.t.duration || 1;
  const rowH = Math.max(c.height / n, 1);
  const paint = (r: Row, i: number, color: string) => {
    ctx.fillStyle = color;
    const x = r.timestamp !== undefined ? ((r.timestamp - s.t.start) / span) * w : 0;
    ctx.fillRect(x, (i / n) * c.height, Math.max(1, ((r.duration ?? 0) / span) * w), rowH);
  };
  rows.forEach((r, i) => paint(r, i, s.color(r.service)));
  // Errors and find matches drawn last, so a single one still shows.
  rows.forEach((r, i) => { if (r.error) paint(r, i, ERROR_COLOR); });
  rows.forEach((r, i) => { if (s.matchSet.has(r)) paint(r, i, '#111'); });
  const [a, b] = s.zoom;
  if (a > 0 || b < s.t.duration) {
    ctx.fillStyle = 'rgba(255,255,255,.65)';
    ctx.fillRect(0, 0, (a / span) * w, c.height);
    ctx.fillRect((b / span) * w, 0, w, c.height);
  }
  drawLens(s);
}

export function drawLens(s: TraceState) {
  const total = s.rows.length * ROW || 1;
  const top = s.viewport.scrollTop / total;
  const size = Math.min(1, (s.viewport.clientHeight || total) / total);
  s.lens.style.top = `${top * 100}%`;
  s.lens.style.height = `${size * 100}%`;
  s.lens.hidden = s.view !== 'timeline';
}
