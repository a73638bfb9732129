import type { Endpoint } from '../../api';
import { clear, formatDuration, formatTime, h } from '../../dom';
import type { Half, Row, Trace } from '../../model';
import { pushState } from './index';
import type { TraceState } from './state';
import { refresh, renderRows, scrollTo } from './timeline';

// The span detail: selecting a row opens it (its ancestors expanded) and
// shows each half's timing, endpoints, tags and annotations.

export function select(s: TraceState, r: Row, scroll = false) {
  s.selected = r;
  // Open the ancestors so the row is on screen.
  let opened = false;
  for (let a = r.parent; a; a = a.parent) if (s.collapsed.delete(a.key)) opened = true;
  if (opened) refresh(s);
  if (scroll) scrollTo(s, r); else renderRows(s);
  clear(s.detail, h('button', { type: 'button', class: 'detail-close', 'aria-label': 'close the span detail',
    onclick: () => s.detail.classList.remove('has-span') }, '×'), spanDetail(r, s.t));
  s.detail.classList.add('has-span');
  pushState(s);
}

function endpoint(e?: Endpoint): string {
  if (!e) return '';
  const addr = e.ipv4 ?? (e.ipv6 ? `[${e.ipv6}]` : '');
  return [e.serviceName, addr && (e.port ? `${addr}:${e.port}` : addr)].filter(Boolean).join(' @ ');
}

const halfLabel = (x: Half) => `${x.service || 'unknown'} (${x.side})`;

export function spanDetail(r: Row, t: Trace): HTMLElement {
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
