import { clear, formatDuration, h } from '../../dom';
import type { Stat } from '../../analyze';

// The statistics view: per service and span name, sortable.

export function statsTable(stats: Stat[], color: (s: string) => string): HTMLElement {
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
