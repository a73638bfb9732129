// The time ranges every page offers, and how a page's URL parameters
// become a query's endTs and lookback: one table, so search and the
// dependency graph (and its "search traces of X" link) agree.

export interface TimeRange { key: string; label: string; ms: number }

export const RANGES: TimeRange[] = [
  { key: '5m', label: 'last 5 minutes', ms: 5 * 60_000 },
  { key: '15m', label: 'last 15 minutes', ms: 15 * 60_000 },
  { key: '1h', label: 'last hour', ms: 3_600_000 },
  { key: '6h', label: 'last 6 hours', ms: 6 * 3_600_000 },
  { key: '1d', label: 'last day', ms: 86_400_000 },
  { key: '2d', label: 'last 2 days', ms: 2 * 86_400_000 },
  { key: '7d', label: 'last 7 days', ms: 7 * 86_400_000 },
];

// CUSTOM is the range given by the URL's endTs and lookback.
export const CUSTOM: TimeRange = { key: 'custom', label: 'custom…', ms: 0 };

// rangeOf is the range the URL names, or the one keyed fallback.
export function rangeOf(params: URLSearchParams, fallback: string): TimeRange {
  const key = params.get('range') ?? fallback;
  if (key === CUSTOM.key) return CUSTOM;
  return RANGES.find((r) => r.key === key) ?? RANGES.find((r) => r.key === fallback) ?? RANGES[1];
}

// windowOf is the query window of a URL: a preset ends at the URL's endTs
// when it has one (a submitted search pins it, so a shared link shows the
// same traces later), else now; a custom range is the URL's endTs and
// lookback (an hour back when it has none).
export function windowOf(params: URLSearchParams, fallback: string, now = Date.now()): { endTs: number; lookback: number } {
  const r = rangeOf(params, fallback);
  if (r !== CUSTOM) return { endTs: Number(params.get('endTs') ?? '') || now, lookback: r.ms };
  const endTs = Number(params.get('endTs') ?? '') || now;
  return { endTs, lookback: Math.max(1, Number(params.get('lookback') ?? '') || 3_600_000) };
}
