import type { Annotation, Endpoint, Span } from './api';

// A Row is one line of the timeline: a span, or a client and server half
// sharing a span ID merged into one, as Zipkin Lens shows them.
export interface Row {
  key: string;
  id: string;
  parentId?: string;
  name: string;
  service: string;
  remoteService?: string;
  kind?: string;
  timestamp?: number;
  duration?: number;
  tags: Record<string, string>;
  annotations: Annotation[];
  localEndpoint?: Endpoint;
  remoteEndpoint?: Endpoint;
  halves: Span[]; // the spans merged into this row
  error: boolean;
  depth: number;
  children: Row[];
  parent?: Row;
  skew?: number; // µs this span starts before its parent (clock skew)
}

export interface Trace {
  traceId: string;
  spans: Span[];
  roots: Row[];
  rows: Row[]; // every row, depth first
  start: number;
  end: number;
  duration: number;
  services: [string, number][]; // spans per service, most first
  rootService: string;
  rootName: string;
  error: boolean;
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

function rowOf(halves: Span[]): Row {
  const client = halves.find((s) => s.kind === 'CLIENT');
  const server = halves.find((s) => s.kind === 'SERVER');
  const main = server ?? halves[0];
  const starts = halves.map((s) => s.timestamp).filter((t): t is number => !!t);
  const tags: Record<string, string> = {};
  for (const s of halves) Object.assign(tags, s.tags);
  const annotations = halves.flatMap((s) => s.annotations ?? []).sort((a, b) => a.timestamp - b.timestamp);
  return {
    key: halves.map((s) => `${s.id}:${s.kind ?? ''}:${svc(s.localEndpoint)}`).join('|'),
    id: main.id,
    parentId: (client ?? main).parentId ?? halves.find((s) => s.parentId)?.parentId,
    name: main.name ?? client?.name ?? '',
    service: svc(main.localEndpoint) || svc(client?.remoteEndpoint) || svc(client?.localEndpoint) || 'unknown',
    remoteService: client && server ? svc(client.localEndpoint) : svc(main.remoteEndpoint) || undefined,
    kind: client && server ? 'CLIENT+SERVER' : main.kind,
    timestamp: starts.length ? Math.min(...starts) : undefined,
    duration: client?.duration ?? main.duration ?? Math.max(0, ...halves.map((s) => s.duration ?? 0)),
    tags, annotations,
    localEndpoint: main.localEndpoint,
    remoteEndpoint: client && server ? client.localEndpoint : main.remoteEndpoint,
    halves,
    error: halves.some(isError),
    depth: 0, children: [],
  };
}

// buildTrace arranges a trace's spans as a tree of rows. Client/server
// halves become one row; spans whose parent is missing become roots.
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
      roots.push(r);
    }
  }
  const byStart = (a: Row, b: Row) => (a.timestamp ?? Infinity) - (b.timestamp ?? Infinity) || a.key.localeCompare(b.key);
  roots.sort(byStart);
  const ordered: Row[] = [];
  const stack = [...roots].reverse().map((r) => ({ r, depth: 0 }));
  while (stack.length) {
    const { r, depth } = stack.pop()!;
    r.depth = depth;
    r.children.sort(byStart);
    if (r.parent && r.timestamp !== undefined && r.parent.timestamp !== undefined && r.timestamp < r.parent.timestamp) {
      r.skew = r.parent.timestamp - r.timestamp;
    }
    ordered.push(r);
    for (let i = r.children.length - 1; i >= 0; i--) stack.push({ r: r.children[i], depth: depth + 1 });
  }
  const times = spans.filter((s) => s.timestamp).map((s) => s.timestamp!);
  const start = times.length ? Math.min(...times) : 0;
  let end = start;
  for (const s of spans) if (s.timestamp) end = Math.max(end, s.timestamp + (s.duration ?? 0));
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
  };
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
