import dagre from '@dagrejs/dagre';
import { api, type DependencyLink } from '../api';
import { clear, errorBox, h, s } from '../dom';
import { edgeHealth, edgeKey, edgeText, fmtRate, fmtUs, type EdgeHealth } from '../health';
import { neighbourhood } from '../analyze';
import { palette } from '../palette';
import { navigate, withParams, type Nav } from '../router';
import { RANGES, rangeOf, windowOf, type TimeRange } from '../timerange';

// The dependency graph: services laid out by dagre, edges labelled with
// their rate, error share and p99 (the caller's client spans, from the
// service metrics) and coloured by error share. The view zooms (wheel, buttons), pans (drag) and
// fits the screen; a service can be focused with its neighbours N calls
// away; a service or an edge opens its detail. Services that never
// reported a span themselves (a database, a third-party API seen only as
// a client's remote) are drawn dashed.
export async function dependenciesPage(nav: Nav) {
  const params = nav.params;
  const range = rangeOf(params, '1d');
  const win = windowOf(params, '1d');
  const focus = params.get('focus') ?? '';
  const hops = Math.max(1, Math.min(5, Number(params.get('hops') ?? '1') || 1));
  const url = (over: Record<string, string | undefined>) => `/dependencies?${withParams(params, over)}`;
  const rangeSel = h('select', { 'aria-label': 'time range', onchange: (ev: Event) => navigate(url({ range: (ev.target as HTMLSelectElement).value, endTs: undefined })) },
    ...RANGES.map((r) => h('option', { value: r.key, selected: r.key === range.key }, r.label)));
  const title = h('h1', null, 'Dependencies');
  nav.show(title, h('p', null, 'Time: ', rangeSel), h('p', { class: 'muted' }, 'Loading…'));
  const cfg = await api.config().catch(() => undefined);
  if (cfg?.dependency?.enabled === false) {
    nav.show(title, h('div', { class: 'empty' }, 'The dependency graph is turned off on this server (dependency.enabled is false in /config.json).'));
    return;
  }
  let all: DependencyLink[], services: string[];
  // The edges' p99 is an extra: without the service metrics (an older
  // server, ZIPQ_NO_SERVICE_METRICS) the graph shows rates and errors.
  const edgeStats = api.stats({ endTs: win.endTs, lookback: win.lookback, step: win.lookback, by: 'service,remoteService',
    kind: 'CLIENT,PRODUCER', quantile: '0.99' }, nav.signal).catch(() => undefined);
  try {
    [all, services] = await Promise.all([api.dependencies(win.endTs, win.lookback, nav.signal), api.services(nav.signal).catch(() => [] as string[])]);
  } catch (e) {
    nav.show(title, h('p', null, 'Time: ', rangeSel), errorBox(e));
    return;
  }
  if (all.length === 0) {
    nav.show(title, h('p', null, 'Time: ', rangeSel),
      h('div', { class: 'empty' }, h('strong', null, 'No calls between services in this time range.'),
        ' Links appear about a second after spans of a trace crossing services (a CLIENT span with a remote service, or CLIENT and SERVER halves) are stored. Try a longer range.'));
    return;
  }
  const links = focus ? neighbourhood(all, focus, hops) : all;
  const health = edgeHealth(links, await edgeStats, win.lookback);
  const healthOf = (l: DependencyLink) => health.get(edgeKey(l.parent, l.child)) as EdgeHealth;
  const instrumented = new Set(services);
  const low = cfg?.dependency.lowErrorRate ?? 0.5, high = cfg?.dependency.highErrorRate ?? 0.75;
  const edgeClass = (l: DependencyLink) => {
    const rate = (l.errorCount ?? 0) / l.callCount;
    return rate >= high ? 'edge-high' : rate >= low ? 'edge-low' : (l.errorCount ?? 0) > 0 ? 'edge-some' : 'edge-ok';
  };

  const g = new dagre.graphlib.Graph();
  // Ranks far enough apart for the longest edge label.
  const labelPx = Math.max(0, ...links.map((l) => edgeText(healthOf(l)).length)) * 7;
  g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: Math.max(120, labelPx + 30), marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = [...new Set(links.flatMap((l) => [l.parent, l.child]))].sort();
  const color = palette(names);
  for (const n of names) g.setNode(n, { width: Math.min(240, 24 + n.length * 8), height: 34 });
  for (const l of links) if (l.parent !== l.child) g.setEdge(l.parent, l.child);
  dagre.layout(g);
  const gi = g.graph();
  const W = gi.width ?? 600, H = gi.height ?? 400;
  const panel = h('aside', { class: 'detail', 'aria-label': 'service detail' }, h('p', { class: 'muted' }, 'Click a service or an edge to see its detail. Wheel zooms, drag pans.'));
  const layer = s('g', { class: 'layer' });
  const svg = s('svg', { class: 'graph', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'service dependency graph' },
    s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#778' }))), layer);
  const select = (el: Element, detail: HTMLElement) => {
    svg.querySelectorAll('.is-selected').forEach((x) => x.classList.remove('is-selected'));
    el.classList.add('is-selected');
    clear(panel, detail);
  };
  for (const l of links) {
    const e = g.edge(l.parent, l.child);
    if (!e?.points?.length) continue;
    const pts = e.points;
    const d = pts.map((p: { x: number; y: number }, i: number) => `${i ? 'L' : 'M'} ${p.x} ${p.y}`).join(' ');
    const mid = pts[Math.floor(pts.length / 2)];
    const el = s('g', { class: `edge ${edgeClass(l)}`, 'data-parent': l.parent, 'data-child': l.child, tabindex: 0, role: 'button', 'aria-label': `${l.parent} to ${l.child}` },
      s('path', { d, 'marker-end': 'url(#arrow)' }), s('path', { d, class: 'edge-hit' }),
      s('text', { x: mid.x, y: mid.y - 6, 'text-anchor': 'middle', class: 'edge-label' },
        edgeText(healthOf(l))));
    el.addEventListener('click', () => select(el, edgeDetail(l, healthOf(l), range)));
    layer.append(el);
  }
  for (const n of names) {
    const node = g.node(n);
    const el = s('g', { class: `node${instrumented.size && !instrumented.has(n) ? ' uninstrumented' : ''}${n === focus ? ' is-focus' : ''}`, 'data-service': n, tabindex: 0, role: 'button', 'aria-label': n },
      s('rect', { x: node.x - node.width / 2, y: node.y - node.height / 2, width: node.width, height: node.height, rx: 6, style: `stroke:${color(n)}` }),
      s('text', { x: node.x, y: node.y + 5, 'text-anchor': 'middle' }, n));
    const show = () => select(el, serviceDetail(n, links, range, instrumented, url, hops));
    el.addEventListener('click', show);
    el.addEventListener('keydown', (ev) => { if ((ev as KeyboardEvent).key === 'Enter') show(); });
    layer.append(el);
  }

  // Zoom and pan move the viewBox; "fit" shows the whole graph.
  let vb = { x: 0, y: 0, w: W, h: H };
  const apply = () => svg.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
  const zoomBy = (f: number, cx = vb.x + vb.w / 2, cy = vb.y + vb.h / 2) => {
    const w = Math.max(50, Math.min(W * 8, vb.w * f)), hh = (w / vb.w) * vb.h;
    vb = { x: cx - ((cx - vb.x) * w) / vb.w, y: cy - ((cy - vb.y) * hh) / vb.h, w, h: hh };
    apply();
  };
  const fit = () => { vb = { x: 0, y: 0, w: W, h: H }; apply(); };
  svg.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const b = svg.getBoundingClientRect();
    const scale = Math.max(vb.w / b.width, vb.h / b.height);
    zoomBy(ev.deltaY > 0 ? 1.2 : 1 / 1.2, vb.x + (ev.clientX - b.left) * scale, vb.y + (ev.clientY - b.top) * scale);
  }, { passive: false });
  let drag: { x: number; y: number; vx: number; vy: number } | null = null;
  svg.addEventListener('mousedown', (ev) => { if ((ev.target as Element).closest('.node, .edge')) return; drag = { x: ev.clientX, y: ev.clientY, vx: vb.x, vy: vb.y }; svg.classList.add('panning'); });
  const move = (ev: MouseEvent) => {
    if (!drag) return;
    const b = svg.getBoundingClientRect();
    const scale = Math.max(vb.w / b.width, vb.h / b.height);
    vb.x = drag.vx - (ev.clientX - drag.x) * scale;
    vb.y = drag.vy - (ev.clientY - drag.y) * scale;
    apply();
  };
  const up = () => { drag = null; svg.classList.remove('panning'); };
  window.addEventListener('mousemove', move);
  window.addEventListener('mouseup', up);
  nav.onLeave(() => { window.removeEventListener('mousemove', move); window.removeEventListener('mouseup', up); });

  const table = h('table', { class: 'links' }, h('thead', null, h('tr', null, h('th', null, 'caller'), h('th', null, 'callee'), h('th', null, 'calls'), h('th', null, 'errors'), h('th', null, 'error rate'))),
    h('tbody', null, ...links.map((l) => h('tr', { class: edgeClass(l) }, h('td', null, l.parent), h('td', null, l.child), h('td', null, l.callCount), h('td', null, l.errorCount ?? 0), h('td', null, rate(l))))));
  nav.show(title,
    h('p', { class: 'graph-tools' }, 'Time: ', rangeSel, h('span', { class: 'muted' }, ` · ${names.length} services, ${links.length} links`),
      focus ? h('span', { class: 'chip focus-chip' }, `focus: ${focus}, ${hops} hop${hops === 1 ? '' : 's'} `,
        h('a', { href: url({ focus: undefined, hops: undefined }), 'data-link': true }, 'show all')) : null,
      h('span', { class: 'zoom-buttons' },
        h('button', { type: 'button', 'aria-label': 'zoom in', onclick: () => zoomBy(1 / 1.3) }, '+'),
        h('button', { type: 'button', 'aria-label': 'zoom out', onclick: () => zoomBy(1.3) }, '−'),
        h('button', { type: 'button', class: 'fit', onclick: fit }, 'Fit'))),
    h('div', { class: 'graph-layout' }, h('div', { class: 'graph-wrap' }, svg), panel),
    h('p', { class: 'muted legend' }, 'Dashed: a service that reported no spans itself (seen only as a remote: a database, a queue, a third-party API).'),
    h('details', null, h('summary', null, 'All links as a table'), table));
}

const rate = (l: DependencyLink) => `${(((l.errorCount ?? 0) / Math.max(1, l.callCount)) * 100).toFixed(1)}%`;

function edgeDetail(l: DependencyLink, e: EdgeHealth, range: TimeRange): HTMLElement {
  return h('div', { class: 'edge-detail' }, h('h2', null, `${l.parent} → ${l.child}`),
    h('table', { class: 'kv' }, h('tbody', null,
      h('tr', null, h('th', null, 'calls'), h('td', null, l.callCount)),
      h('tr', null, h('th', null, 'rate'), h('td', null, fmtRate(e.rate))),
      e.p99 !== undefined ? h('tr', null, h('th', null, 'p99 (caller)'), h('td', null, fmtUs(e.p99))) : null,
      h('tr', null, h('th', null, 'errors'), h('td', null, l.errorCount ?? 0)),
      h('tr', null, h('th', null, 'error rate'), h('td', { class: 'error-rate' }, rate(l))))),
    h('p', null, h('a', { href: `/?serviceName=${encodeURIComponent(l.parent)}&remoteServiceName=${encodeURIComponent(l.child)}&range=${range.key}`, 'data-link': true }, `Search traces of ${l.parent} calling ${l.child}`)));
}

function serviceDetail(name: string, links: DependencyLink[], range: TimeRange, instrumented: Set<string>, url: (o: Record<string, string | undefined>) => string, hops: number): HTMLElement {
  const list = (items: DependencyLink[], other: (l: DependencyLink) => string) => items.length
    ? h('ul', null, ...items.map((l) => h('li', null, h('strong', null, other(l)), ` ${l.callCount} calls`, l.errorCount ? h('span', { class: 'error-text' }, ` · ${l.errorCount} errors`) : null)))
    : h('p', { class: 'muted' }, 'none');
  return h('div', { class: 'service-detail' }, h('h2', null, name),
    instrumented.size && !instrumented.has(name) ? h('p', { class: 'muted' }, 'Reported no spans itself: known from its callers only.') : null,
    h('h3', null, 'Called by'), list(links.filter((l) => l.child === name), (l) => l.parent),
    h('h3', null, 'Calls'), list(links.filter((l) => l.parent === name), (l) => l.child),
    h('p', null, 'Focus: ', ...[1, 2, 3].map((n) => h('a', { href: url({ focus: name, hops: String(n) }), 'data-link': true, class: `focus-link${n === hops ? ' active' : ''}` }, ` ${n} hop${n === 1 ? '' : 's'} `))),
    h('p', null, h('a', { href: `/?serviceName=${encodeURIComponent(name)}&range=${range.key}`, 'data-link': true }, `Search traces of ${name}`)));
}
