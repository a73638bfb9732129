// The service health model: rows and sparklines from /api/zipq/stats (the
// RED metrics the collectors compute at ingest). Pure: unit-tested in
// test/health.test.mjs, drawn by pages/services.ts.

export interface Exemplar { traceId: string; id: string; duration: number; timestamp: number }
export interface StatsPoint {
  timestamp: number; calls: number; errors: number; rate: number; errorRatio: number;
  quantiles: number[]; avg: number; slowest?: Exemplar; failed?: Exemplar;
  bytes?: number; // the stored segments' bytes of these spans
}
export interface StatsSeries {
  serviceName?: string; spanName?: string; kind?: string; remoteServiceName?: string;
  total: StatsPoint; points: StatsPoint[];
}
export interface StatsAnswer { start: number; end: number; step: number; quantiles: number[]; relativeAccuracy: number; series: StatsSeries[] }

// The columns=true answer: per series one array per field (a few numbers a
// point, about 50 bytes where an object a point takes 270), exemplars apart.
export interface StatsColumns { bucket: number[]; calls: number[]; errors: number[]; avg: number[]; bytes: number[]; quantiles: number[][] }
export interface StatsColumnSeries {
  serviceName?: string; spanName?: string; kind?: string; remoteServiceName?: string;
  total: StatsPoint; columns: StatsColumns; exemplars: { bucket: number; slowest?: Exemplar; failed?: Exemplar }[];
}
export type StatsColumnsAnswer = Omit<StatsAnswer, 'series'> & { series: StatsColumnSeries[] };

// EXEMPLAR_SLICES is how many slices of a range the UI asks exemplars
// from (each slice's slowest span and slowest failed one): more than the
// steps it asks (statsStep), so a chart has every step's.
export const EXEMPLAR_SLICES = 240;

// fromColumns is a columns=true answer as points, the shape the views
// read: rate and error ratio from calls, errors and the step.
export function fromColumns(a: StatsColumnsAnswer): StatsAnswer {
  const { series, ...head } = a;
  return {
    ...head, series: series.map(({ columns: c, exemplars, ...name }) => {
      const ex = new Map(exemplars.map((e) => [e.bucket, e]));
      return {
        ...name, points: c.bucket.map((b, i) => {
          const e = ex.get(b);
          const p: StatsPoint = {
            timestamp: a.start + b * a.step, calls: c.calls[i], errors: c.errors[i], rate: c.calls[i] / (a.step / 1000),
            errorRatio: c.calls[i] ? c.errors[i] / c.calls[i] : 0, quantiles: c.quantiles.map((q) => q[i]), avg: c.avg[i], bytes: c.bytes[i],
          };
          if (e?.slowest) p.slowest = e.slowest;
          if (e?.failed) p.failed = e.failed;
          return p;
        }),
      };
    }),
  };
}

// The quantiles every health view asks for: the median and the tail.
export const QUANTILES = [0.5, 0.99];

export interface HealthRow {
  key: string; series: StatsSeries;
  calls: number; rate: number; errorPct: number; p50?: number; p99?: number;
}

// healthRows is one row per series, busiest first, keyed as label says.
export function healthRows(a: StatsAnswer, label: (s: StatsSeries) => string): HealthRow[] {
  const qi = (q: number) => a.quantiles.indexOf(q);
  return a.series.map((s) => ({
    key: label(s), series: s, calls: s.total.calls, rate: s.total.rate,
    errorPct: s.total.calls ? (100 * s.total.errors) / s.total.calls : 0,
    p50: s.total.quantiles[qi(0.5)], p99: s.total.quantiles[qi(0.99)],
  })).sort((x, y) => y.calls - x.calls || x.key.localeCompare(y.key));
}

// statsStep is the step a Services page asks for: about `points` steps,
// and steps the server answers from one row per service and hour (its
// strips) rather than a row per service and minute: one minute up to an
// hour's window, whole hours from a day's (the server starts steps on a
// multiple of the step, so on the hour). Between, whole minutes.
export function statsStep(lookback: number, points: number): number {
  const MINUTE = 60_000, HOUR = 3_600_000;
  if (lookback <= HOUR) return MINUTE;
  if (lookback < 24 * HOUR) return Math.max(MINUTE, Math.round(lookback / points / MINUTE) * MINUTE);
  return Math.ceil(lookback / points / HOUR) * HOUR;
}

// buckets is how many steps the answer's range has.
export const buckets = (a: StatsAnswer) => Math.max(1, Math.ceil((a.end - a.start) / a.step));

// sparkPath is an SVG path of value over the answer's buckets, w × h,
// from 0 at the bottom to max at the top. A bucket without a point is 0
// when zeroFill (rates: no calls), else a gap (latency: nothing to say).
export function sparkPath(a: StatsAnswer, points: StatsPoint[], value: (p: StatsPoint) => number | undefined,
  w: number, h: number, max: number, zeroFill: boolean): string {
  const n = buckets(a);
  const at = new Map(points.map((p) => [Math.round((p.timestamp - a.start) / a.step), p]));
  const x = (i: number) => +(n === 1 ? w / 2 : (i * w) / (n - 1)).toFixed(1);
  const y = (v: number) => +(h - (max > 0 ? (Math.min(v, max) / max) * h : 0)).toFixed(1);
  let d = '', pen = false;
  for (let i = 0; i < n; i++) {
    const p = at.get(i);
    const v = p ? value(p) : zeroFill ? 0 : undefined;
    if (v === undefined) { pen = false; continue; }
    d += `${pen ? 'L' : 'M'}${x(i)} ${y(v)}`;
    pen = true;
  }
  return d;
}

export interface Mark { x: number; y: number; traceId: string; duration: number; failed: boolean }

// exemplarMarks places each point's exemplars (the slowest span, and the
// slowest failed one) at their time and duration on a w × h chart whose
// top is maxUs.
export function exemplarMarks(a: StatsAnswer, points: StatsPoint[], w: number, h: number, maxUs: number): Mark[] {
  const x = (tsUs: number) => +(((tsUs / 1000 - a.start) / Math.max(1, a.end - a.start)) * w).toFixed(1);
  const y = (us: number) => +(h - (maxUs > 0 ? (Math.min(us, maxUs) / maxUs) * h : 0)).toFixed(1);
  const marks: Mark[] = [];
  const mark = (e: Exemplar, failed: boolean) => marks.push({ x: x(e.timestamp), y: y(e.duration), traceId: e.traceId, duration: e.duration, failed });
  for (const p of points) {
    const same = !!p.slowest && !!p.failed && p.slowest.traceId === p.failed.traceId && p.slowest.id === p.failed.id;
    if (p.slowest) mark(p.slowest, same); // the slowest span failed: one mark
    if (p.failed && !same) mark(p.failed, true);
  }
  return marks;
}

// minDurationAt is the minimum duration (µs) that finds the spans at or
// above a quantile read from the sketches: the value less their relative
// accuracy, since it may be that much above the true quantile; at least
// 1 µs, the least minimum the search takes.
export const minDurationAt = (quantileUs: number, relativeAccuracy: number) =>
  Math.max(1, Math.floor(quantileUs / (1 + relativeAccuracy)));

// fmtRate renders calls per second the way a person reads them.
export function fmtRate(r: number): string {
  if (r === 0) return '0/s';
  if (r >= 100) return `${Math.round(r)}/s`;
  if (r >= 1) return `${+r.toFixed(1)}/s`;
  if (r * 60 >= 1) return `${+(r * 60).toFixed(1)}/min`;
  if (r * 3600 >= 1) return `${+(r * 3600).toFixed(1)}/h`;
  return `${+(r * 86400).toFixed(1)}/day`;
}

export const fmtPct = (p: number) => (p === 0 ? '0%' : p < 0.1 ? '<0.1%' : `${+p.toFixed(1)}%`);

export interface EdgeLink { parent: string; child: string; callCount: number; errorCount?: number }
export interface EdgeHealth { rate: number; errorPct: number; p99?: number }
export const edgeKey = (parent: string, child: string) => `${parent}\u0000${child}`;

// edgeHealth is each dependency link's health over a window of windowMs:
// its rate and error share from the link (both sides of each call paired
// by the linker), and the p99 of the caller's client spans to the callee
// from the service metrics by service and remote service (absent when the
// callers' spans do not name the callee).
export function edgeHealth(links: EdgeLink[], stats: StatsAnswer | undefined, windowMs: number): Map<string, EdgeHealth> {
  const p99 = new Map<string, number>();
  const qi = stats ? stats.quantiles.indexOf(0.99) : -1;
  for (const s of stats?.series ?? []) {
    const v = s.total.quantiles[qi];
    if (s.serviceName && s.remoteServiceName && v !== undefined) p99.set(edgeKey(s.serviceName, s.remoteServiceName), v);
  }
  const out = new Map<string, EdgeHealth>();
  for (const l of links) {
    const k = edgeKey(l.parent, l.child);
    out.set(k, { rate: l.callCount / Math.max(1, windowMs / 1000), errorPct: (100 * (l.errorCount ?? 0)) / Math.max(1, l.callCount), p99: p99.get(k) });
  }
  return out;
}

// edgeText is an edge's label: rate, error share, p99 (when known).
export function edgeText(e: EdgeHealth): string {
  return [fmtRate(e.rate), `${fmtPct(e.errorPct)} err`, e.p99 !== undefined ? `p99 ${fmtUs(e.p99)}` : ''].filter(Boolean).join(' · ');
}

// fmtUs is a duration in µs to three significant figures, as a sketch's
// quantile (1 % accurate) deserves.
export function fmtUs(us: number): string {
  if (us >= 1e6) return `${+(us / 1e6).toPrecision(3)}s`;
  if (us >= 1e3) return `${+(us / 1e3).toPrecision(3)}ms`;
  return `${Math.round(us)}µs`;
}
