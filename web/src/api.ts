// Typed calls to zipq's Zipkin API v2 and its own pipeline endpoint.

export interface Endpoint { serviceName?: string; ipv4?: string; ipv6?: string; port?: number }
export interface Annotation { timestamp: number; value: string }
export interface Span {
  traceId: string; id: string; parentId?: string; kind?: 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';
  name?: string; timestamp?: number; duration?: number; localEndpoint?: Endpoint; remoteEndpoint?: Endpoint;
  annotations?: Annotation[]; tags?: Record<string, string>; debug?: boolean; shared?: boolean;
}
export interface DependencyLink { parent: string; child: string; callCount: number; errorCount?: number }
export interface UIConfig {
  environment: string; queryLimit: number; defaultLookback: number; searchEnabled: boolean;
  dependency: { enabled: boolean; lowErrorRate: number; highErrorRate: number };
}
export interface ParkedMessage { reason: string; error?: string; parkedAt?: string; bytes: number; replays?: number }
export interface Pipeline {
  adminEnabled: boolean;
  pipeline?: {
    queue: string; queueType?: string; warning?: string; messages: number; consumers: number; parkedQueue: string; parked: number;
    parkedSample?: ParkedMessage[]; receivedPerSecond: number | null; storedPerSecond: number | null;
    drainPerSecond: number | null; drainSeconds: number | null;
  };
  error?: string;
}

async function get<T>(path: string, params?: Record<string, string | number | undefined>): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== '') q.set(k, String(v));
  const url = q.toString() ? `${path}?${q}` : path;
  const res = await fetch(url);
  if (!res.ok) {
    const text = (await res.text()).trim();
    throw new Error(`${res.status} ${res.statusText}${text ? ': ' + text : ''}`);
  }
  return res.json() as Promise<T>;
}

export const api = {
  config: () => get<UIConfig>('/config.json'),
  services: () => get<string[]>('/api/v2/services'),
  spanNames: (serviceName: string) => get<string[]>('/api/v2/spans', { serviceName }),
  remoteServices: (serviceName: string) => get<string[]>('/api/v2/remoteServices', { serviceName }),
  autocompleteKeys: () => get<string[]>('/api/v2/autocompleteKeys'),
  autocompleteValues: (key: string) => get<string[]>('/api/v2/autocompleteValues', { key }),
  traces: (params: Record<string, string | number | undefined>) => get<Span[][]>('/api/v2/traces', params),
  trace: async (id: string): Promise<Span[] | null> => {
    const res = await fetch(`/api/v2/trace/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`${res.status}: ${(await res.text()).trim()}`);
    return res.json();
  },
  dependencies: (endTs: number, lookback: number) => get<DependencyLink[]>('/api/v2/dependencies', { endTs, lookback }),
  pipeline: (parked: boolean) => get<Pipeline>('/api/zipq/pipeline', { parked: parked ? 1 : undefined }),
  replay: async (token: string, reason: string): Promise<number> => {
    const q = reason ? `?reason=${encodeURIComponent(reason)}` : '';
    const res = await fetch(`/admin/replay${q}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    const text = await res.text();
    if (!res.ok) throw new Error(`${res.status}: ${text.trim()}`);
    return (JSON.parse(text) as { replayed: number }).replayed;
  },
};
