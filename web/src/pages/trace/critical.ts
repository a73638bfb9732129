import { criticalPath } from '../../analyze';
import { pushState, redraw } from './index';
import type { TraceState } from './state';

// The critical path (analyze.ts computes it, Jaeger's algorithm): its
// toggle, kept in the URL as cp=1, recomputed when switched on.
export function wireCriticalPath(s: TraceState) {
  s.cpToggle.addEventListener('change', () => { s.cp = s.cpToggle.checked ? criticalPath(s.t) : null; pushState(s); redraw(s); });
  if (s.cpToggle.checked) s.cp = criticalPath(s.t);
}
