import { findRows, matchedRows } from '../../analyze';
import { drawMinimap, renderRows } from './timeline';
import { select } from './detail';
import { pushState } from './index';
import type { TraceState } from './state';

// Find in the trace: matches by service, name, remote service, tag,
// annotation or ID (analyze.ts), stepped through with ↑/↓, and the next
// error. With the box empty, the matches are the spans the TraceQL search
// that opened the trace matched, if it did.

export function find(s: TraceState, fromInput: boolean) {
  const t0 = performance.now();
  const q = s.findInput.value;
  s.matches = q.trim() ? findRows(s.t, q) : matchedRows(s.t, s.matched);
  s.matchSet = new Set(s.matches);
  s.current = s.matches.length ? 0 : -1;
  const of = s.matches.length ? `1 of ${s.matches.length}` : '';
  s.findCount.textContent = q.trim() ? of || 'no match' : of && `${of} matched by the query`;
  if (s.matches.length) select(s, s.matches[0], true);
  else { renderRows(s); if (fromInput) pushState(s); }
  drawMinimap(s);
  document.body.dataset.findMs = String(Math.round(performance.now() - t0));
}

export function step(s: TraceState, d: number) {
  if (!s.matches.length) { find(s, false); return; }
  s.current = (s.current + d + s.matches.length) % s.matches.length;
  s.findCount.textContent = `${s.current + 1} of ${s.matches.length}`;
  select(s, s.matches[s.current], true);
}

export function nextError(s: TraceState) {
  const all = s.t.rows;
  const from = s.selected ? all.indexOf(s.selected) : -1;
  for (let k = 1; k <= all.length; k++) {
    const r = all[(from + k) % all.length];
    if (r.error) { select(s, r, true); return; }
  }
  s.findCount.textContent = 'no errors in this trace';
}
