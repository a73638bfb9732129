import { formatDuration, h } from '../../dom';
import { visibleRows, type Row } from '../../model';
import { ERROR_COLOR } from '../../palette';
import { select } from './detail';
import { renderView } from './index';
import type { TraceState } from './state';

const FLAME_MAX = 3000; // flame graph blocks drawn at most

// flame draws each row as a block under its parent, x by time (the
// zoom window applies), one level per 22 px. At most FLAME_MAX blocks,
// the widest: tens of thousands of positioned elements take seconds to
// lay out, and the narrowest are the ones a zoom brings back.
export function flame(s: TraceState): HTMLElement {
  const rows = visibleRows(s.t, s.collapsed);
  const depth = Math.max(0, ...rows.map((r) => r.depth)) + 1;
  const box = h('div', { class: 'flame', style: `height:${depth * 22}px`, role: 'list', 'aria-label': 'flame graph' });
  const width = s.main.clientWidth || 1000;
  const blocks: { r: Row; left: number; w: number }[] = [];
  for (const r of rows) {
    if (r.timestamp === undefined) continue;
    const l = s.x(r.timestamp), rr = s.x(r.timestamp + (r.duration ?? 0));
    if (rr < 0 || l > 100 || ((rr - l) / 100) * width < 0.5) continue;
    const left = Math.max(0, l);
    blocks.push({ r, left, w: Math.min(100, rr) - left });
  }
  const shown = blocks.length > FLAME_MAX ? [...blocks].sort((a, b) => b.w - a.w).slice(0, FLAME_MAX) : blocks;
  box.append(...shown.map(({ r, left, w }) => {
    const cls = ['flame-block', r.error && 'is-error', s.cp?.has(r) && 'on-cp', s.matchSet.has(r) && 'is-match', s.selected === r && 'is-selected'].filter(Boolean).join(' ');
    return h('div', { class: cls, role: 'listitem', 'data-span-id': r.id, title: `${r.service} ${r.name} ${formatDuration(r.duration)}`,
      style: `left:${left}%;width:${w}%;top:${r.depth * 22}px;background:${r.error ? ERROR_COLOR : s.color(r.service)}`,
      onclick: () => { select(s, r); renderView(s); } }, `${r.service} ${r.name}`);
  }));
  const hidden = blocks.length - shown.length;
  return h('div', null, hidden ? h('p', { class: 'muted flame-note' },
    `The ${FLAME_MAX.toLocaleString()} widest of ${blocks.length.toLocaleString()} spans are drawn; drag across the minimap or the ruler to zoom in and see the ${hidden.toLocaleString()} narrower ones.`) : null, box);
}
