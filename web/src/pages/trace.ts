import { api, type Endpoint, type Span } from '../api';
import { clear, errorBox, formatDuration, formatTime, h, serviceColor } from '../dom';
import { buildTrace, visibleRows, type Row, type Trace } from '../model';
import { onLeave } from '../router';

const ROW = 24; // px per timeline row; rows are virtualized for big traces

// The trace page: a waterfall of the span tree with collapsible subtrees,
// a ruler, a minimap, and a detail panel for the selected span.
export async function tracePage(root: HTMLElement, id: string, local?: Span[]) {
  clear(root, h('p', { class: 'muted' }, 'Loading trace…'));
  let spans: Span[] | null;
  try {
    spans = local ?? (await api.trace(id));
  } catch (e) {
    clear(root, errorBox(e, 'A trace ID is 16 or 32 hex characters.'));
    return;
  }
  if (!spans || spans.length === 0) {
    clear(root, h('div', { class: 'empty' }, h('h1', null, 'Trace not found'),
      h('p', null, `No spans are stored for ${id}. Spans appear once their batch is committed (about a second), and are kept for the retention period.`),
      h('a', { href: '/', 'data-link': true }, 'Search traces')));
    return;
  }
  const t0 = performance.now();
  const trace = buildTrace(spans);
  new TraceView(root, trace, !!local);
  document.body.dataset.renderMs = String(Math.round(performance.now() - t0));
}

class TraceView {
  collapsed = new Set<string>();
  rows: Row[] = [];
  selected?: Row;
  body: HTMLElement;
  spacer: HTMLElement;
  viewport: HTMLElement;
  detail: HTMLElement;
  minimap: HTMLCanvasElement;
  lens: HTMLElement;
  frame = 0;

  constructor(root: HTMLElement, readonly t: Trace, readonly local: boolean) {
    this.spacer = h('div', { class: 'tl-spacer' });
    this.body = h('div', { class: 'tl-rows', role: 'tree', 'aria-label': 'spans' });
    this.viewport = h('div', { class: 'tl-viewport', tabindex: 0 }, this.spacer, this.body);
    this.detail = h('aside', { class: 'detail', 'aria-label': 'span detail' }, h('p', { class: 'muted' }, 'Select a span to see its details.'));
    this.minimap = h('canvas', { class: 'minimap', height: 48, 'aria-label': 'minimap' });
    this.lens = h('div', { class: 'minimap-lens' });
    const download = h('button', { type: 'button', onclick: () => this.download() }, 'Download JSON');
    const buttons = h('span', { class: 'actions' },
      h('button', { type: 'button', onclick: () => this.setAll(false) }, 'Expand all'),
      h('button', { type: 'button', onclick: () => this.setAll(true) }, 'Collapse all'), download);
    const skewed = t.rows.filter((r) => r.skew);
    clear(root,
      h('div', { class: 'trace-head' },
        h('h1', null, h('span', { class: 'root-service' }, t.rootService), ': ', h('span', null, t.rootName)),
        h('div', { class: 'trace-meta' },
          h('span', null, 'Trace ', h('code', { class: 'trace-id' }, t.traceId)), local ? h('span', { class: 'chip' }, 'from file, not stored') : null,
          h('span', null, `Duration ${formatDuration(t.duration)}`), h('span', null, `${t.spans.length} spans`),
          h('span', null, `${t.services.length} services`), h('span', null, `Started ${formatTime(t.start)}`),
          t.error ? h('span', { class: 'error-mark' }, 'errors') : null),
        buttons,
        skewed.length ? h('p', { class: 'skew-note', role: 'note' },
          `Clock skew: ${skewed.length} span${skewed.length === 1 ? ' starts' : 's start'} before ${skewed.length === 1 ? 'its' : 'their'} parent (marked ⚠). Their hosts' clocks disagree; durations are still right.`) : null),
      h('div', { class: 'minimap-wrap' }, this.minimap, this.lens),
      h('div', { class: 'trace-layout' },
        h('div', { class: 'timeline' }, this.ruler(), this.viewport),
        this.detail));
    this.viewport.addEventListener('scroll', () => this.schedule());
    const onResize = () => { this.drawMinimap(); this.schedule(); };
    window.addEventListener('resize', onResize);
    onLeave(() => window.removeEventListener('resize', onResize));
    this.minimap.addEventListener('mousedown', (ev) => this.minimapJump(ev));
    this.minimap.addEventListener('mousemove', (ev) => { if (ev.buttons === 1) this.minimapJump(ev); });
    this.refresh();
    const first = this.rows[0];
    if (first) this.select(first);
  }

  ruler(): HTMLElement {
    const ticks = [0, 0.25, 0.5, 0.75, 1];
    return h('div', { class: 'tl-ruler' }, h('div', { class: 'tl-label-col' }, 'Service · span'),
      h('div', { class: 'tl-bar-col' }, ...ticks.map((f) =>
        h('span', { class: 'tick', style: `left:${f * 100}%` }, formatDuration(Math.round(this.t.duration * f))))));
  }

  refresh() {
    this.rows = visibleRows(this.t, this.collapsed);
    this.spacer.style.height = `${this.rows.length * ROW}px`;
    this.drawMinimap();
    this.renderRows();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.renderRows(); this.drawLens(); });
  }

  // renderRows draws only the rows in view (plus a margin), so a trace of
  // 10,000 spans costs the same to scroll as one of 50.
  renderRows() {
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

  rowEl(r: Row, i: number): HTMLElement {
    const span = this.t.duration || 1;
    const left = r.timestamp !== undefined ? ((r.timestamp - this.t.start) / span) * 100 : 0;
    const width = Math.max(0.2, ((r.duration ?? 0) / span) * 100);
    const hasKids = r.children.length > 0;
    const open = !this.collapsed.has(r.key);
    const toggle = hasKids
      ? h('button', { type: 'button', class: 'toggle', 'aria-expanded': String(open), 'aria-label': open ? 'collapse' : 'expand',
        onclick: (ev: Event) => { ev.stopPropagation(); this.toggle(r); } }, open ? '▾' : '▸')
      : h('span', { class: 'toggle-pad' });
    const el = h('div', {
      class: `tl-row${r.error ? ' is-error' : ''}${this.selected === r ? ' is-selected' : ''}`,
      role: 'treeitem', 'aria-level': r.depth + 1, 'data-span-id': r.id, 'data-row': i, style: `height:${ROW}px`,
      onclick: () => this.select(r),
    },
    h('div', { class: 'tl-label-col', style: `padding-left:${r.depth * 14}px` }, toggle,
      h('span', { class: 'svc-dot', style: `background:${serviceColor(r.service)}` }),
      h('span', { class: 'svc-name' }, r.service), ' ', h('span', { class: 'span-name' }, r.name),
      r.skew ? h('span', { class: 'skew', title: `starts ${formatDuration(r.skew)} before its parent: clock skew` }, ' ⚠') : null,
      hasKids && !open ? h('span', { class: 'muted' }, ` (+${countBelow(r)})`) : null),
    h('div', { class: 'tl-bar-col' },
      h('div', { class: 'tl-bar', style: `left:${left}%;width:${width}%;background:${r.error ? 'var(--error)' : serviceColor(r.service)}` }),
      h('span', { class: 'tl-dur', style: `left:${Math.min(left + width, 92)}%` }, formatDuration(r.duration))));
    return el;
  }

  toggle(r: Row) {
    if (this.collapsed.has(r.key)) this.collapsed.delete(r.key); else this.collapsed.add(r.key);
    this.refresh();
  }

  setAll(collapse: boolean) {
    this.collapsed.clear();
    if (collapse) for (const r of this.t.roots) if (r.children.length) this.collapsed.add(r.key);
    this.refresh();
  }

  select(r: Row) {
    this.selected = r;
    this.renderRows();
    clear(this.detail, spanDetail(r, this.t));
  }

  drawMinimap() {
    const c = this.minimap;
    const w = (c.width = c.clientWidth || 800);
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.clearRect(0, 0, w, c.height);
    const n = this.rows.length || 1;
    const span = this.t.duration || 1;
    const rowH = Math.max(c.height / n, 0.5);
    this.rows.forEach((r, i) => {
      ctx.fillStyle = r.error ? '#d33' : serviceColor(r.service);
      const x = r.timestamp !== undefined ? ((r.timestamp - this.t.start) / span) * w : 0;
      ctx.fillRect(x, (i / n) * c.height, Math.max(1, ((r.duration ?? 0) / span) * w), Math.max(rowH, 1));
    });
    this.drawLens();
  }

  drawLens() {
    const total = this.rows.length * ROW || 1;
    const top = this.viewport.scrollTop / total;
    const size = Math.min(1, (this.viewport.clientHeight || total) / total);
    this.lens.style.top = `${top * 100}%`;
    this.lens.style.height = `${size * 100}%`;
  }

  minimapJump(ev: MouseEvent) {
    const rect = this.minimap.getBoundingClientRect();
    const f = (ev.clientY - rect.top) / rect.height;
    this.viewport.scrollTop = f * this.rows.length * ROW - this.viewport.clientHeight / 2;
  }

  download() {
    const blob = new Blob([JSON.stringify(this.t.spans, null, 2)], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `trace-${this.t.traceId}.json` });
    document.body.append(a);
    a.click();
    a.remove();
  }
}

function countBelow(r: Row): number {
  let n = 0;
  for (const c of r.children) n += 1 + countBelow(c);
  return n;
}

function endpoint(e?: Endpoint): string {
  if (!e) return '';
  const addr = e.ipv4 ?? (e.ipv6 ? `[${e.ipv6}]` : '');
  return [e.serviceName, addr && (e.port ? `${addr}:${e.port}` : addr)].filter(Boolean).join(' @ ');
}

function spanDetail(r: Row, t: Trace): HTMLElement {
  const kv = (k: string, v: Node | string | undefined) => v ? h('tr', null, h('th', null, k), h('td', null, v)) : null;
  const rel = (ts: number) => formatDuration(ts - t.start);
  const ids = r.halves.map((s) => s.parentId).find(Boolean);
  return h('div', { class: 'span-detail' },
    h('h2', null, h('span', { class: 'svc-name' }, r.service), ': ', h('span', { class: 'span-name' }, r.name)),
    r.skew ? h('p', { class: 'skew-note' }, `Starts ${formatDuration(r.skew)} before its parent: the hosts' clocks are skewed.`) : null,
    h('table', { class: 'kv' }, h('tbody', null,
      kv('Kind', r.kind ?? 'local'),
      kv('Span ID', h('code', null, r.id)), kv('Parent ID', ids ? h('code', null, ids) : undefined),
      kv('Trace ID', h('code', null, t.traceId)),
      kv('Start', r.timestamp ? `${formatTime(r.timestamp)} (+${rel(r.timestamp)})` : undefined),
      kv('Duration', formatDuration(r.duration)),
      ...r.halves.map((s) => kv(`${s.kind ?? 'Local'} local endpoint`, endpoint(s.localEndpoint))),
      ...r.halves.map((s) => kv(`${s.kind ?? 'Local'} remote endpoint`, endpoint(s.remoteEndpoint))))),
    h('h3', null, 'Tags'),
    Object.keys(r.tags).length
      ? h('table', { class: 'kv tags' }, h('tbody', null, ...Object.entries(r.tags).sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => h('tr', { class: k === 'error' ? 'is-error' : '' }, h('th', null, k), h('td', null, h('pre', null, v))))))
      : h('p', { class: 'muted' }, 'No tags.'),
    h('h3', null, 'Annotations'),
    r.annotations.length
      ? h('table', { class: 'kv annotations' }, h('tbody', null, ...r.annotations.map((a) =>
        h('tr', null, h('th', null, `+${rel(a.timestamp)}`), h('td', null, a.value)))))
      : h('p', { class: 'muted' }, 'No annotations.'));
}
