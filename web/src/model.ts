import type { Annotation, Endpoint, Span } from './api';

// The trace model: pure functions from Zipkin v2 spans to the rows the
// timeline draws. No DOM here, so web/test can run it under node --test.

// A Half is one reported span of a row (a row merges a client and server
// half sharing a span ID, as Zipkin Lens does), with its clock-corrected
// start.
export interface Half {
  span: Span;
  side: 'client' | 'server' | 'local' | 'producer' | 'consumer';
  service: string;
  start?: number; // corrected µs
  duration?: number;
}

export interface SourcedAnnotation extends Annotation {
  side: Half['side'];
  service: string;
  corrected: number; // the timestamp moved by its half's skew correction
}

// A Row is one line of the timeline.
export interface Row {
  key: string;
  id: string;
  parentId?: string;
  name: string;
  service: string;
  remoteService?: string; // the callee of an unmerged CLIENT or PRODUCER span
  kind?: string;
  timestamp?: number; // corrected start, µs
  duration?: number;
  tags: Record<string, string>; // every half's tags (for find; the detail shows them per half)
  annotations: SourcedAnnotation[];
  localEndpoint?: Endpoint;
  remoteEndpoint?: Endpoint;
  halves: Half[];
  error: boolean;
  depth: number;
  children: Row[];
  parent?: Row;
  // µs added to this row's server side (and its subtree) to fit it into
  // its client's window, as Zipkin's and Jaeger's UIs correct clock skew.
  skewShift?: number;
  // µs this row starts before its parent even after correction.
  skew?: number;
  orphanOf?: string; // the parent ID this row names but the trace lacks
}

export interface Trace {
  traceId: string;
  spans: Span[];
  roots: Row[];
  rows: Row[]; // every row, depth first
  start: number;
  end: number;
  duration: number; // from corrected spans
  services: [string, number][]; // spans per service, most first
  rootService: string;
  rootName: string;
  error: boolean;
  corrected: number; // rows whose clock skew was corrected
  orphans: number; // rows whose parent is missing
}

const svc = (e?: Endpoint) => e?.serviceName ?? '';

export function isError(s: Span): boolean {
  return s.tags !== undefined && 'error' in s.tags;
}

// mergeFragments combines pieces of one span reported separately (same id,
// same kind, same or unknown local service), as Zipkin's Trace.merge does.
function mergeFragments(pieces: Span[]): Span[] {
  const out: Span[] = [];
  for (const p of pieces) {
    const same = out.find((o) => (o.kind ?? '') === (p.kind ?? '') && !!o.shared === !!p.shared &&
      (!svc(o.localEndpoint) || !svc(p.localEndpoint) || svc(o.localEndpoint) === svc(p.localEndpoint)));
    if (!same) { out.push({ ...p }); continue; }
    same.parentId ??= p.parentId;
    same.name ??= p.name;
    same.timestamp ??= p.timestamp;
    same.duration ??= p.duration;
    same.localEndpoint = { ...p.localEndpoint, ...same.localEndpoint };
    if (p.remoteEndpoint) same.remoteEndpoint = { ...p.remoteEndpoint, ...same.remoteEndpoint };
    same.annotations = [...(same.annotations ?? []), ...(p.annotations ?? [])];
    same.tags = { ...same.tags, ...p.tags };
  }
  return out;
}

const sideOf = (s: Span): Half['side'] =>
  s.kind === 'CLIENT' ? 'client' : s.kind === 'SERVER' ? 'server' : s.kind === 'PRODUCER' ? 'producer' : s.kind === 'CONSUMER' ? 'consumer' : 'local';

function rowOf(spans: Span[]): Row {
  const halves: Half[] = spans.map((s) => ({ span: s, side: sideOf(s), service: svc(s.localEndpoint), start: s.timestamp, duration: s.duration }));
  const client = halves.find((x) => x.side === 'client');
  const server = halves.find((x) => x.side === 'server');
  const main = server ?? halves[0];
  const merged = !!client && !!server;
  const tags: Record<string, string> = {};
  for (const x of halves) Object.assign(tags, x.span.tags);
  return {
    key: halves.map((x) => `${x.span.id}:${x.span.kind ?? ''}:${x.service}`).join('|'),
    id: main.span.id,
    parentId: (client ?? main).span.parentId ?? halves.find((x) => x.span.parentId)?.span.parentId,
    name: main.span.name ?? client?.span.name ?? '',
    service: main.service || svc(client?.span.remoteEndpoint) || client?.service || 'unknown',
    remoteService: !merged && (main.side === 'client' || main.side === 'producer') ? svc(main.span.remoteEndpoint) || undefined : undefined,
    kind: merged ? 'CLIENT+SERVER' : main.span.kind,
    tags,
    annotations: [],
    localEndpoint: main.span.localEndpoint,
    remoteEndpoint: merged ? client.span.localEndpoint : main.span.remoteEndpoint,
    halves,
    error: spans.some(isError),
    depth: 0, children: [],
  };
}

// buildTrace arranges a trace's spans as a tree of rows, corrects clock
// skew and marks orphans. Client/server halves become one row; spans
// whose parent is missing become roots marked with the missing ID.
export function buildTrace(spans: Span[]): Trace {
  const byId = new Map<string, Span[]>();
  for (const s of spans) {
    const list = byId.get(s.id);
    if (list) list.push(s); else byId.set(s.id, [s]);
  }
  const rows: Row[] = [];
  const rowById = new Map<string, Row>();
  for (const [id, pieces] of byId) {
    const merged = mergeFragments(pieces);
    const client = merged.find((s) => s.kind === 'CLIENT');
    const server = merged.find((s) => s.kind === 'SERVER' && (s.shared || client));
    if (client && server && merged.length === 2) {
      const r = rowOf([client, server]);
      rows.push(r);
      rowById.set(id, r);
      continue;
    }
    // Halves that cannot be told apart stay separate rows: the first keeps
    // the id, the others hang below it.
    merged.forEach((s, i) => {
      const r = rowOf([s]);
      if (i > 0) { r.parentId = id; r.key += `#${i}`; }
      rows.push(r);
      if (i === 0) rowById.set(id, r);
    });
  }
  const roots: Row[] = [];
  for (const r of rows) {
    const p = r.parentId !== undefined ? rowById.get(r.parentId) : undefined;
    if (p && p !== r && !isAncestor(r, p)) {
      r.parent = p;
      p.children.push(r);
    } else {
      if (r.parentId !== undefined && !p) r.orphanOf = r.parentId;
      roots.push(r);
    }
  }
  const byRawStart = (a: Row, b: Row) => rawStart(a) - rawStart(b) || a.key.localeCompare(b.key);
  // The real root (no parent ID) first, then orphans, each by start.
  roots.sort((a, b) => Number(!!a.orphanOf) - Number(!!b.orphanOf) || byRawStart(a, b));

  // Depth first, carrying each subtree's skew corrections down. A row is
  // corrected when its parent is visited, so siblings are ordered by
  // their corrected starts (a skewed host's spans would sort first).
  const ordered: Row[] = [];
  const below = new Map<Row, Shifts>();
  const byStart = (a: Row, b: Row) => (a.timestamp ?? Infinity) - (b.timestamp ?? Infinity) || a.key.localeCompare(b.key);
  for (const r of roots) below.set(r, correct(r, new Map()));
  const stack = [...roots].reverse().map((r) => ({ r, depth: 0 }));
  let corrected = 0;
  while (stack.length) {
    const { r, depth } = stack.pop()!;
    r.depth = depth;
    if (r.skewShift) corrected++;
    if (r.parent && r.timestamp !== undefined && r.parent.timestamp !== undefined && r.timestamp < r.parent.timestamp) {
      r.skew = r.parent.timestamp - r.timestamp;
    }
    for (const c of r.children) below.set(c, correct(c, below.get(r)!));
    r.children.sort(byStart);
    ordered.push(r);
    for (let i = r.children.length - 1; i >= 0; i--) stack.push({ r: r.children[i], depth: depth + 1 });
  }

  let start = Infinity, end = -Infinity;
  for (const r of ordered) {
    for (const x of r.halves) {
      if (x.start === undefined) continue;
      start = Math.min(start, x.start);
      end = Math.max(end, x.start + (x.duration ?? 0));
    }
  }
  if (start === Infinity) start = end = 0;
  const counts = new Map<string, number>();
  for (const s of spans) {
    const name = svc(s.localEndpoint) || 'unknown';
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  const root = roots[0];
  return {
    traceId: spans.reduce((id, s) => (s.traceId.length > id.length ? s.traceId : id), spans[0]?.traceId ?? ''),
    spans, roots, rows: ordered, start, end, duration: end - start,
    services: [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
    rootService: root?.service ?? '', rootName: root?.name ?? '',
    error: spans.some(isError),
    corrected, orphans: roots.filter((r) => r.orphanOf).length,
  };
}

function rawStart(r: Row): number {
  let m = Infinity;
  for (const x of r.halves) if (x.span.timestamp !== undefined) m = Math.min(m, x.span.timestamp);
  return m;
}

// Shifts are the clock corrections found so far on a path of the tree,
// by service: a host's clock is off for every span it reports, so a
// correction applies to that service's halves below, not to its callees'.
type Shifts = Map<string, number>;

// correct applies the inherited shifts to r's halves, then fits a server
// that lies outside its client's window into it: the server keeps its
// duration and sits in the middle of the client's (network latency split
// evenly each way), as Zipkin's CorrectForClockSkew. A SERVER row below
// an unmerged CLIENT row (OpenTelemetry-style child IDs) is fitted into
// that client the same way. Returns the shifts for r's subtree.
function correct(r: Row, shifts: Shifts): Shifts {
  for (const x of r.halves) x.start = x.span.timestamp === undefined ? undefined : x.span.timestamp + (shifts.get(x.service) ?? 0);
  let client: Half | undefined = r.halves.find((x) => x.side === 'client');
  const server = r.halves.find((x) => x.side === 'server');
  if (server && !client && r.parent?.kind === 'CLIENT') client = r.parent.halves[0];
  let below = shifts;
  if (client && server && client !== server && client.start !== undefined && server.start !== undefined &&
    client.duration !== undefined && server.duration !== undefined) {
    const cEnd = client.start + client.duration, sEnd = server.start + server.duration;
    if (server.start < client.start || sEnd > cEnd) {
      const latency = Math.max(0, (client.duration - server.duration) / 2);
      const extra = client.start + latency - server.start;
      server.start += extra;
      r.skewShift = extra;
      below = new Map(shifts);
      below.set(server.service, (shifts.get(server.service) ?? 0) + extra);
    }
  }
  const starts = r.halves.map((x) => x.start).filter((t): t is number => t !== undefined);
  r.timestamp = starts.length ? Math.min(...starts) : undefined;
  const c = r.halves.find((x) => x.side === 'client');
  r.duration = c?.duration ?? (server ?? r.halves[0]).duration ?? Math.max(0, ...r.halves.map((x) => x.duration ?? 0));
  const shifted = new Map(r.halves.map((x) => [x.span, (x.start ?? 0) - (x.span.timestamp ?? 0)]));
  r.annotations = r.halves.flatMap((x) => (x.span.annotations ?? []).map((a) => ({
    ...a, side: x.side, service: x.service, corrected: a.timestamp + (shifted.get(x.span) ?? 0),
  }))).sort((a, b) => a.corrected - b.corrected);
  return below;
}

function isAncestor(r: Row, candidate: Row): boolean {
  for (let a: Row | undefined = candidate; a; a = a.parent) if (a === r) return true;
  return false;
}

// visibleRows lists rows depth first, skipping the subtrees of collapsed rows.
export function visibleRows(t: Trace, collapsed: Set<string>): Row[] {
  const out: Row[] = [];
  let skipBelow = -1;
  for (const r of t.rows) {
    if (skipBelow >= 0 && r.depth > skipBelow) continue;
    skipBelow = -1;
    out.push(r);
    if (collapsed.has(r.key) && r.children.length) skipBelow = r.depth;
  }
  return out;
}

// collapseBelow is the collapsed set that shows rows down to depth
// `depth` (0: roots only): every row at that depth with children is closed.
export function collapseBelow(t: Trace, depth: number): Set<string> {
  const out = new Set<string>();
  for (const r of t.rows) if (r.depth === depth && r.children.length) out.add(r.key);
  return out;
}

// shownDepth is the deepest level visible under a collapsed set.
export function shownDepth(t: Trace, collapsed: Set<string>): number {
  let d = 0;
  for (const r of visibleRows(t, collapsed)) d = Math.max(d, r.depth);
  return d;
}

export function countBelow(r: Row): number {
  let n = 0;
  const stack = [...r.children];
  while (stack.length) {
    const c = stack.pop()!;
    n++;
    stack.push(...c.children);
  }
  return n;
}
