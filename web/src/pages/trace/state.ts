import type { Section } from '../../analyze';
import { h } from '../../dom';
import type { Row, Trace } from '../../model';
import { palette } from '../../palette';
import type { Nav } from '../../router';
import { setZoom } from './timeline';

export const ROW = 24; // px per timeline row; rows are virtualized for big traces
export type View = 'timeline' | 'flame' | 'stats';

// The trace page's one state object: what is shown (the trace, the rows
// in view, collapse, selection, find matches, critical path, view and
// zoom) and the elements every view draws into. The views are functions
// of it, one module each (timeline, flame, find, detail, stats, critical
// path); index.ts builds the page and keeps the state in the URL.
export class TraceState {
  collapsed = new Set<string>();
  rows: Row[] = [];
  selected?: Row;
  matches: Row[] = [];
  matchSet = new Set<Row>();
  // The spans the search that opened this trace matched (?matched=), shown
  // as find's matches while the find box is empty.
  matched: string[];
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
  zoomReset = h('button', { type: 'button', class: 'zoom-reset', hidden: true, onclick: () => setZoom(this, 0, this.t.duration) }, 'Reset zoom');
  frame = 0;


  constructor(readonly nav: Nav, readonly t: Trace, readonly local: boolean) {
    const p = nav.params;
    this.color = palette(t.rows.map((r) => r.service));
    this.view = (['flame', 'stats'].includes(p.get('view') ?? '') ? p.get('view') : 'timeline') as View;
    const z = (p.get('zoom') ?? '').split(',').map(Number);
    this.zoom = z.length === 2 && z[1] > z[0] && z[0] >= 0 ? [z[0], Math.min(z[1], t.duration)] : [0, t.duration];
    this.matched = (p.get('matched') ?? '').split(',').filter(Boolean);
    this.findInput = h('input', { type: 'search', name: 'find', placeholder: 'find: service, name, tag, id…  ( / )', 'aria-label': 'find in trace', value: p.get('find') ?? '', size: 28 });
    this.cpToggle = h('input', { type: 'checkbox', name: 'criticalPath', checked: p.get('cp') === '1' });
  }

  // x maps a trace time (µs, absolute) to a percentage of the zoom window.
  x(ts: number): number {
    return ((ts - this.t.start - this.zoom[0]) / Math.max(1, this.zoom[1] - this.zoom[0])) * 100;
  }
}
