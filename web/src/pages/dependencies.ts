import dagre from '@dagrejs/dagre';
import { api, type DependencyLink, type UIConfig } from '../api';
import { clear, errorBox, h, s, serviceColor } from '../dom';
import { navigate } from '../router';
import { RANGES, rangeOf, windowOf, type TimeRange } from '../timerange';

// The dependency graph: services laid out by dagre, edges labelled with
// call and error counts; clicking a service lists its callers and callees.
export async function dependenciesPage(root: HTMLElement, params: URLSearchParams) {
  const range = rangeOf(params, '1d');
  const win = windowOf(params, '1d');
  const rangeSel = h('select', { 'aria-label': 'time range', onchange: (ev: Event) => navigate(`/dependencies?range=${(ev.target as HTMLSelectElement).value}`) },
    ...RANGES.map((r) => h('option', { value: r.key, selected: r.key === range.key }, r.label)));
  clear(root, h('h1', null, 'Dependencies'), h('p', null, 'Time: ', rangeSel), h('p', { class: 'muted' }, 'Loading…'));
  let links: DependencyLink[];
  let cfg: UIConfig | undefined;
  try {
    [links, cfg] = await Promise.all([api.dependencies(win.endTs, win.lookback), api.config().catch(() => undefined)]);
  } catch (e) {
    clear(root, h('h1', null, 'Dependencies'), errorBox(e));
    return;
  }
  if (links.length === 0) {
    clear(root, h('h1', null, 'Dependencies'), h('p', null, 'Time: ', rangeSel),
      h('div', { class: 'empty' }, h('strong', null, 'No calls between services in this time range.'),
        ' Links appear about a second after spans of a trace crossing services (a CLIENT span with a remote service, or CLIENT and SERVER halves) are stored. Try a longer range.'));
    return;
  }
  const low = cfg?.dependency.lowErrorRate ?? 0.5, high = cfg?.dependency.highErrorRate ?? 0.75;
  const edgeClass = (l: DependencyLink) => {
    const rate = (l.errorCount ?? 0) / l.callCount;
    return rate >= high ? 'edge-high' : rate >= low ? 'edge-low' : (l.errorCount ?? 0) > 0 ? 'edge-some' : 'edge-ok';
  };

  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 120, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = [...new Set(links.flatMap((l) => [l.parent, l.child]))].sort();
  for (const n of names) g.setNode(n, { width: Math.min(240, 24 + n.length * 8), height: 34 });
  for (const l of links) if (l.parent !== l.child) g.setEdge(l.parent, l.child);
  dagre.layout(g);
  const gi = g.graph();
  const panel = h('aside', { class: 'detail', 'aria-label': 'service detail' }, h('p', { class: 'muted' }, 'Click a service to see its callers and callees.'));
  const svg = s('svg', { class: 'graph', width: gi.width ?? 600, height: gi.height ?? 400, role: 'img', 'aria-label': 'service dependency graph' },
    s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#778' }))));
  for (const l of links) {
    const e = g.edge(l.parent, l.child);
    if (!e?.points?.length) continue;
    const pts = e.points;
    const d = pts.map((p: { x: number; y: number }, i: number) => `${i ? 'L' : 'M'} ${p.x} ${p.y}`).join(' ');
    const mid = pts[Math.floor(pts.length / 2)];
    svg.append(s('g', { class: `edge ${edgeClass(l)}`, 'data-parent': l.parent, 'data-child': l.child },
      s('path', { d, 'marker-end': 'url(#arrow)' }),
      s('text', { x: mid.x, y: mid.y - 6, 'text-anchor': 'middle', class: 'edge-label' },
        `${l.callCount} calls${l.errorCount ? ` · ${l.errorCount} errors` : ''}`)));
  }
  for (const n of names) {
    const node = g.node(n);
    const el = s('g', { class: 'node', 'data-service': n, tabindex: 0, role: 'button', 'aria-label': n },
      s('rect', { x: node.x - node.width / 2, y: node.y - node.height / 2, width: node.width, height: node.height, rx: 6, style: `stroke:${serviceColor(n)}` }),
      s('text', { x: node.x, y: node.y + 5, 'text-anchor': 'middle' }, n));
    const show = () => {
      svg.querySelectorAll('.node.is-selected').forEach((x) => x.classList.remove('is-selected'));
      el.classList.add('is-selected');
      clear(panel, serviceDetail(n, links, range));
    };
    el.addEventListener('click', show);
    el.addEventListener('keydown', (ev) => { if ((ev as KeyboardEvent).key === 'Enter') show(); });
    svg.append(el);
  }
  const table = h('table', { class: 'links' }, h('thead', null, h('tr', null, h('th', null, 'caller'), h('th', null, 'callee'), h('th', null, 'calls'), h('th', null, 'errors'))),
    h('tbody', null, ...links.map((l) => h('tr', { class: edgeClass(l) }, h('td', null, l.parent), h('td', null, l.child), h('td', null, l.callCount), h('td', null, l.errorCount ?? 0)))));
  clear(root, h('h1', null, 'Dependencies'), h('p', null, 'Time: ', rangeSel, h('span', { class: 'muted' }, ` · ${names.length} services, ${links.length} links`)),
    h('div', { class: 'graph-layout' }, h('div', { class: 'graph-wrap' }, svg), panel),
    h('details', null, h('summary', null, 'All links as a table'), table));
}

function serviceDetail(name: string, links: DependencyLink[], range: TimeRange): HTMLElement {
  const list = (items: DependencyLink[], other: (l: DependencyLink) => string) => items.length
    ? h('ul', null, ...items.map((l) => h('li', null, h('strong', null, other(l)), ` ${l.callCount} calls`, l.errorCount ? h('span', { class: 'error-text' }, ` · ${l.errorCount} errors`) : null)))
    : h('p', { class: 'muted' }, 'none');
  return h('div', { class: 'service-detail' }, h('h2', null, name),
    h('h3', null, 'Called by'), list(links.filter((l) => l.child === name), (l) => l.parent),
    h('h3', null, 'Calls'), list(links.filter((l) => l.parent === name), (l) => l.child),
    h('p', null, h('a', { href: `/?serviceName=${encodeURIComponent(name)}&range=${range.key}`, 'data-link': true }, `Search traces of ${name}`)));
}
