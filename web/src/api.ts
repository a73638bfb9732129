// Typed calls to zipq's Zipkin API v2 and its own pipeline endpoint.
import type { ParkedMessage, Snapshot } from './pipeline.gen';
import { EXEMPLAR_SLICES, fromColumns, type StatsAnswer, type StatsColumnsAnswer } from './health';
import { savedTenant, savedToken, withToken } from './session';

export interface Endpoint { serviceName?: string; ipv4?: string; ipv6?: string; port?: number }
export interface Annotation { timestamp: number; value: string }
export interface Span {
  traceId: string; id: string; parentId?: string; kind?: 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';
  name?: string; timestamp?: number; duration?: number; localEndpoint?: Endpoint; remoteEndpoint?: Endpoint;
  annotations?: Annotation[]; tags?: Record<string, string>; debug?: boolean; shared?: boolean;
}
// Tempo's search answer (GET /api/search), as much of it as the UI reads.
export interface TempoSearch {
  traces: { traceID: string; spanSets?: { spans: { spanID: string }[]; matched: number }[] }[];
}
export interface TempoScope { name: string; tags: string[] }
export interface TempoValue { type: string; value: string }
export interface DependencyLink { parent: string; child: string; callCount: number; errorCount?: number }
export interface UIConfig {
  environment: string; queryLimit: number; defaultLookback: number; searchEnabled: boolean;
  dependency: { enabled: boolean; lowErrorRate: number; highErrorRate: number };
}
// The pipeline endpoint's answer; its Snapshot and ParkedMessage types are
// generated from the Go structs (pipeline.gen.ts, checked by a Go test).
export interface Pipeline { adminEnabled: boolean; pipeline?: Snapshot; error?: string }
export type ParkedDetail = ParkedMessage;

// ApiError is a failed call, with a message a person can act on: the
// server's own text for a JSON API error, what a proxy's HTML page means,
// or that zipq could not be reached at all.
export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly kind: 'network' | 'proxy' | 'api',
    readonly serverText = '', readonly hadToken = false) {
    super(message);
  }
}

async function call(url: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  const token = savedToken(sessionStorage);
  try {
    res = await fetch(url, withToken(init, token, savedTenant(sessionStorage)));
  } catch (e) {
    if (init.signal?.aborted) throw e;
    throw new ApiError(`Could not reach zipq at ${location.origin} (${e instanceof Error ? e.message : e}). Is it running, and is the network up?`, 0, 'network');
  }
  if (res.ok) return res;
  const type = res.headers.get('Content-Type') ?? '';
  const text = (await res.text()).trim();
  if (type.includes('html') || /^<(!doctype|html)/i.test(text)) {
    throw new ApiError(`${res.status} ${res.statusText} from a proxy or gateway between you and zipq (it answered with an HTML page; zipq answers in JSON or text). Check that zipq is up behind it.`, res.status, 'proxy');
  }
  let msg = text;
  try { msg = (JSON.parse(text) as { error?: string; message?: string }).error ?? (JSON.parse(text) as { message?: string }).message ?? text; } catch { /* plain text */ }
  throw new ApiError(`${res.status} ${res.statusText}${msg ? ': ' + msg.slice(0, 500) : ''}`, res.status, 'api', msg.slice(0, 500),
    token !== '' || new Headers(init.headers).has('Authorization'));
}

type Params = Record<string, string | number | undefined>;

// withQuery is path with params as its query, empty ones left out.
function withQuery(path: string, params?: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== '') q.set(k, String(v));
  return q.toString() ? `${path}?${q}` : path;
}

async function get<T>(path: string, params?: Params, signal?: AbortSignal): Promise<T> {
  return (await call(withQuery(path, params), { signal })).json() as Promise<T>;
}

// admin POSTs to an /admin endpoint with the operator's token (empty: the
// session's token, which then needs the admin scope).
async function admin<T>(path: string, token: string, params: Params): Promise<T> {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  return (await call(withQuery(path, params), { method: 'POST', headers })).json() as Promise<T>;
}

let config: Promise<UIConfig> | null = null;

export const api = {
  // The UI's settings, read once (a failed read is tried again next time).
  config: (): Promise<UIConfig> => (config ??= get<UIConfig>('/config.json').catch((e) => { config = null; throw e; })),
  services: (signal?: AbortSignal) => get<string[]>('/api/v2/services', undefined, signal),
  spanNames: (serviceName: string, signal?: AbortSignal) => get<string[]>('/api/v2/spans', { serviceName }, signal),
  remoteServices: (serviceName: string, signal?: AbortSignal) => get<string[]>('/api/v2/remoteServices', { serviceName }, signal),
  autocompleteKeys: (signal?: AbortSignal) => get<string[]>('/api/v2/autocompleteKeys', undefined, signal),
  autocompleteValues: (key: string, signal?: AbortSignal) => get<string[]>('/api/v2/autocompleteValues', { key }, signal),
  traces: (params: Params, signal?: AbortSignal) => get<Span[][]>('/api/v2/traces', params, signal),
  traceMany: (ids: string[], signal?: AbortSignal) => get<Span[][]>('/api/v2/traceMany', { traceIds: ids.join(',') }, signal),
  // Grafana Tempo's query API, which zipq serves beside Zipkin's.
  tempoSearch: (params: Params, signal?: AbortSignal) => get<TempoSearch>('/api/search', params, signal),
  tempoTags: async (signal?: AbortSignal) => (await get<{ scopes: TempoScope[] }>('/api/v2/search/tags', undefined, signal)).scopes,
  tempoTagValues: async (name: string, signal?: AbortSignal) =>
    (await get<{ tagValues: TempoValue[] }>(`/api/v2/search/tag/${encodeURIComponent(name)}/values`, undefined, signal)).tagValues,
  trace: async (id: string, signal?: AbortSignal): Promise<Span[] | null> => {
    try {
      return await get<Span[]>(`/api/v2/trace/${encodeURIComponent(id)}`, undefined, signal);
    } catch (e) {
      // A trace keep by value thinned is an answer, not an absence: its
      // 404 says by which policy and on which day, and the page shows it.
      if (e instanceof ApiError && e.status === 404 && !e.serverText.includes('thinned by')) return null;
      throw e;
    }
  },
  dependencies: (endTs: number, lookback: number, signal?: AbortSignal) => get<DependencyLink[]>('/api/v2/dependencies', { endTs, lookback }, signal),
  // Service health: the RED metrics computed at ingest, asked in columns.
  stats: async (params: Params, signal?: AbortSignal): Promise<StatsAnswer> =>
    fromColumns(await get<StatsColumnsAnswer>('/api/zipq/stats', { columns: 'true', exemplars: EXEMPLAR_SLICES, ...params }, signal)),
  pipeline: (parked: boolean, signal?: AbortSignal) => get<Pipeline>('/api/zipq/pipeline', { parked: parked ? 1 : undefined }, signal),
  replay: async (token: string, reason: string): Promise<number> =>
    (await admin<{ replayed: number }>('/admin/replay', token, { reason })).replayed,
  discard: async (token: string, id: string): Promise<boolean> =>
    (await admin<{ discarded: number }>('/admin/parked/discard', token, { id })).discarded > 0,
};
