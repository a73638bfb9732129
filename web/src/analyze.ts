import type { Row, Trace } from './model';

// What the trace page computes from a built trace: find, the critical
// path, statistics, a structural diff of two traces, ruler ticks. Pure
// functions (no DOM), unit-tested in web/test.

const end = (r: Row) => (r.timestamp ?? 0) + (r.duration ?? 0);

// findRows returns the rows matching q (case-insensitive substring of the
// service, span name, remote service, span or parent ID, a tag key or
// value, or an annotation), in timeline order. Tokens separated by spaces
// must all match; `key=value` matches one tag exactly.
export function findRows(t: Trace, q: string): Row[] {
  const tokens = q.toLowerCase().split(/\s+/).filter(Boolean);
  if (!tokens.length) return [];
  return t.rows.filter((r) => tokens.every((tok) => rowMatches(r, tok)));
}

function rowMatches(r: Row, tok: string): boolean {
  const eq = tok.indexOf('=');
  if (eq > 0) {
    const k = tok.slice(0, eq), v = tok.slice(eq + 1);
    return Object.entries(r.tags).some(([tk, tv]) => tk.toLowerCase() === k && tv.toLowerCase() === v);
  }
  const has = (s?: string) => !!s && s.toLowerCase().includes(tok);
  if (has(r.service) || has(r.name) || has(r.remoteService) || has(r.id) || has(r.parentId)) return true;
  for (const x of r.halves) if (has(x.service)) return true;
  for (const [k, v] of Object.entries(r.tags)) if (has(k) || has(v)) return true;
  return r.annotations.some((a) => has(a.value));
}

// matchedRows returns the rows of the spans a search matched (their IDs,
// as Tempo's spanSets list them), in timeline order: a TraceQL result
// opens its trace with these highlighted as find highlights its matches.
export function matchedRows(t: Trace, ids: readonly string[]): Row[] {
  const want = new Set(ids);
  return t.rows.filter((r) => want.has(r.id));
}

// A Section is part of a row on the critical path: [from, to) in µs.
export interface Section { from: number; to: number }

// criticalPath finds the spans that determine the trace's duration, as
// Jaeger computes it: from the root's end, walk back into the child that
// finished last before the current point (children clipped to their
// parent's window), then continue in the parent from that child's start.
// A row's sections are the self time it contributes to the path.
export function criticalPath(t: Trace): Map<Row, Section[]> {
  const out = new Map<Row, Section[]>();
  const root = t.roots.find((r) => !r.orphanOf && r.timestamp !== undefined) ?? t.roots.find((r) => r.timestamp !== undefined);
  if (!root) return out;
  const add = (r: Row, from: number, to: number) => {
    if (to <= from) return;
    const list = out.get(r);
    if (list) list.push({ from, to }); else out.set(r, [{ from, to }]);
  };
  // Each frame: a row, the window it is clipped to, and the point in
  // time the walk has come back to.
  interface Frame { r: Row; lo: number; hi: number; at: number }
  const visited = new Set<Row>();
  const frames: Frame[] = [{ r: root, lo: root.timestamp!, hi: end(root), at: end(root) }];
  let guard = 0;
  while (frames.length && guard++ < 4 * t.rows.length + 10) {
    const f = frames[frames.length - 1];
    let next: Row | undefined, nextEnd = -Infinity;
    for (const c of f.r.children) {
      if (visited.has(c) || c.timestamp === undefined) continue;
      const cEnd = Math.min(end(c), f.hi);
      const cStart = Math.max(c.timestamp, f.lo);
      if (cStart >= f.at || cEnd > f.at || cStart > cEnd) continue;
      if (cEnd > nextEnd || (cEnd === nextEnd && next && c.timestamp > next.timestamp!)) { next = c; nextEnd = cEnd; }
    }
    if (next) {
      visited.add(next);
      add(f.r, nextEnd, f.at);
      const lo = Math.max(next.timestamp!, f.lo);
      frames.push({ r: next, lo, hi: nextEnd, at: nextEnd });
      continue;
    }
    add(f.r, f.lo, f.at);
    frames.pop();
    const parent = frames[frames.length - 1];
    if (parent) parent.at = f.lo;
  }
  for (const list of out.values()) list.sort((a, b) => a.from - b.from);
  return out;
}

// selfTime is a row's duration minus the union of its children's
// intervals clipped to it.
export function selfTime(r: Row): number {
  if (r.timestamp === undefined || r.duration === undefined) return 0;
  const lo = r.timestamp, hi = lo + r.duration;
  const iv = r.children.filter((c) => c.timestamp !== undefined)
    .map((c) => [Math.max(lo, c.timestamp!), Math.min(hi, end(c))] as const)
    .filter(([a, b]) => b > a).sort((a, b) => a[0] - b[0]);
  let covered = 0, curA = -Infinity, curB = -Infinity;
  for (const [a, b] of iv) {
    if (a > curB) { if (curB > curA) covered += curB - curA; curA = a; curB = b; } else curB = Math.max(curB, b);
  }
  if (curB > curA) covered += curB - curA;
  return Math.max(0, r.duration - covered);
}

export interface Stat { service: string; name: string; count: number; total: number; self: number; min: number; max: number; avg: number; errors: number }

// traceStats groups rows by service and span name.
export function traceStats(t: Trace): Stat[] {
  const m = new Map<string, Stat>();
  for (const r of t.rows) {
    const k = `${r.service}\u0000${r.name}`;
    let s = m.get(k);
    if (!s) m.set(k, (s = { service: r.service, name: r.name, count: 0, total: 0, self: 0, min: Infinity, max: 0, avg: 0, errors: 0 }));
    const d = r.duration ?? 0;
    s.count++;
    s.total += d;
    s.self += selfTime(r);
    s.min = Math.min(s.min, d);
    s.max = Math.max(s.max, d);
    if (r.error) s.errors++;
  }
  const out = [...m.values()];
  for (const s of out) s.avg = s.total / s.count;
  return out.sort((a, b) => b.self - a.self || a.service.localeCompare(b.service) || a.name.localeCompare(b.name));
}

// A DiffNode is one service+name path from the root, with how often and
// how long it occurs in trace A and trace B.
export interface DiffNode {
  path: string; // service:name/service:name/…
  service: string; name: string; depth: number;
  a: number; b: number; // occurrences
  aAvg?: number; bAvg?: number; // mean duration, µs
  aErrors: number; bErrors: number; // occurrences with an error tag
  status: 'same' | 'added' | 'missing' | 'slower' | 'faster' | 'more' | 'fewer';
}

// diffTraces compares the structure of two traces, as Jaeger's compare:
// spans are matched by their path of service+name from the root; a path
// only in B is added, only in A missing; otherwise counts and mean
// durations are compared (slower/faster beyond `threshold`, 10 %).
export function diffTraces(a: Trace, b: Trace, threshold = 0.1): DiffNode[] {
  const collect = (t: Trace) => {
    const m = new Map<string, { service: string; name: string; depth: number; n: number; total: number; errors: number; order: number }>();
    const paths = new Map<Row, string>();
    let order = 0;
    for (const r of t.rows) {
      const p = (r.parent ? paths.get(r.parent) + '/' : '') + `${r.service}:${r.name}`;
      paths.set(r, p);
      const e = m.get(p) ?? { service: r.service, name: r.name, depth: r.depth, n: 0, total: 0, errors: 0, order: order++ };
      e.n++;
      if (r.error) e.errors++;
      e.total += r.duration ?? 0;
      m.set(p, e);
    }
    return m;
  };
  const ma = collect(a), mb = collect(b);
  const out: DiffNode[] = [];
  for (const path of new Set([...ma.keys(), ...mb.keys()])) {
    const x = ma.get(path), y = mb.get(path);
    const e = (x ?? y)!;
    const n: DiffNode = { path, service: e.service, name: e.name, depth: e.depth, a: x?.n ?? 0, b: y?.n ?? 0,
      aAvg: x ? x.total / x.n : undefined, bAvg: y ? y.total / y.n : undefined,
      aErrors: x?.errors ?? 0, bErrors: y?.errors ?? 0, status: 'same' };
    if (!x) n.status = 'added';
    else if (!y) n.status = 'missing';
    else if (n.b > n.a) n.status = 'more';
    else if (n.b < n.a) n.status = 'fewer';
    else if (n.aAvg! > 0 && (n.bAvg! - n.aAvg!) / n.aAvg! > threshold) n.status = 'slower';
    else if (n.aAvg! > 0 && (n.aAvg! - n.bAvg!) / n.aAvg! > threshold) n.status = 'faster';
    out.push(n);
  }
  // Tree order: by path segments, so children follow their parent.
  return out.sort((p, q) => p.path.localeCompare(q.path));
}

// niceTicks divides [0, span] into round steps (1, 2 or 5 × 10^k µs) of
// at most `max` ticks, none past the end.
export function niceTicks(span: number, max = 6): number[] {
  if (!(span > 0)) return [0];
  const raw = span / Math.max(1, max - 1);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const out: number[] = [];
  for (let v = 0; v <= span + 1e-9 && out.length <= max; v += step) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

// relativeTime says how long ago a µs timestamp was, coarsely.
export function relativeTime(us: number, nowMs: number): string {
  const s = Math.round((nowMs - us / 1000) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// neighbourhood keeps the links within `hops` calls of service (either
// direction), for the dependency graph's focus.
export function neighbourhood<L extends { parent: string; child: string }>(links: L[], service: string, hops: number): L[] {
  const near = new Set([service]);
  for (let i = 0; i < hops; i++) {
    for (const n of [...near]) for (const l of links) {
      if (l.parent === n) near.add(l.child);
      if (l.child === n) near.add(l.parent);
    }
  }
  return links.filter((l) => near.has(l.parent) && near.has(l.child) && (hops > 0));
}
