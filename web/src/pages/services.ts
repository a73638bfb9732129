import { api, type DependencyLink } from '../api';
import { errorBox, formatDuration, h, s } from '../dom';
import { QUANTILES, edgeHealth, statsStep, minDurationAt, edgeKey, edgeText, exemplarMarks, fmtPct, fmtRate, healthRows, sparkPath, type HealthRow, type StatsAnswer, type StatsSeries } from '../health';
import { navigate, withParams, type Nav } from '../router';
import { RANGES, rangeOf, windowOf } from '../timerange';
import { bytesText } from '../usage';

// Service health from the RED metrics computed at ingest: /services has
// one row per service (rate, errors, p50, p99 with sparklines); a
// service's page has its latency chart with a marker per exemplar (the
// slowest span of each step, red when it failed) that opens its trace,
// and the same rows per operation and per called service.

const POINTS = 60; // about how many steps a range is cut into (statsStep)
const SPARK_W = 120, SPARK_H = 24;

interface State { range: string; endTs: number; lookback: number; step: number }

function stateOf(nav: Nav): State {
  const range = rangeOf(nav.params, '1h');
  const win = windowOf(nav.params, '1h');
  return { range: range.key, ...win, step: statsStep(win.lookback, POINTS) };
}

function rangeSelect(nav: Nav, path: string, st: State) {
  return h('select', { 'aria-label': 'time range', onchange: (ev: Event) => navigate(`${path}?${withParams(nav.params, { range: (ev.target as HTMLSelectElement).value, endTs: undefined })}`) },
    ...RANGES.map((r) => h('option', { value: r.key, selected: r.key === st.range }, r.label)));
}

const stats = (st: State, extra: Record<string, string>, signal: AbortSignal) =>
  api.stats({ endTs: st.endTs, lookback: st.lookback, step: st.step, quantile: QUANTILES.join(','), ...extra }, signal);

function spark(a: StatsAnswer, series: StatsSeries, what: 'rate' | 'p99', max: number, failed: boolean) {
  const d = what === 'rate'
    ? sparkPath(a, series.points, (p) => p.rate, SPARK_W, SPARK_H, max, true)
    : sparkPath(a, series.points, (p) => p.quantiles[a.quantiles.indexOf(0.99)], SPARK_W, SPARK_H, max, false);
  return s('svg', { class: `spark spark-${what}${failed ? ' has-errors' : ''}`, width: SPARK_W, height: SPARK_H, viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, role: 'img', 'aria-label': `${what} over time` },
    s('path', { d }));
}

// table renders rows with a link for each key; sparklines share one scale
// per column, so rows compare at a glance.
function table(a: StatsAnswer, rows: HealthRow[], head: string, href: (r: HealthRow) => string | null,
  extra?: { head: string; cell: (r: HealthRow) => Node | string | null }) {
  const maxRate = Math.max(0, ...rows.flatMap((r) => r.series.points.map((p) => p.rate)));
  const maxP99 = Math.max(0, ...rows.flatMap((r) => r.series.points.map((p) => p.quantiles[a.quantiles.indexOf(0.99)] ?? 0)));
  return h('table', { class: 'health' },
    h('thead', null, h('tr', null, h('th', null, head), h('th', { class: 'num' }, 'rate'), h('th', { class: 'num' }, 'errors'),
      h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p99'), h('th', null, 'rate over time'), h('th', null, 'p99 over time'),
      h('th', { class: 'num', title: 'bytes their stored spans take (zipq usage)' }, 'stored'),
      extra ? h('th', null, extra.head) : null)),
    h('tbody', null, ...rows.map((r) => {
      const link = href(r);
      return h('tr', { 'data-key': r.key },
        h('td', null, link ? h('a', { href: link, 'data-link': true }, r.key) : r.key),
        h('td', { class: 'num', title: `${r.calls.toLocaleString()} calls` }, fmtRate(r.rate)),
        h('td', { class: `num${r.errorPct > 0 ? ' errors' : ''}`, title: `${r.series.total.errors.toLocaleString()} failed` }, fmtPct(r.errorPct)),
        h('td', { class: 'num' }, formatDuration(r.p50 === undefined ? undefined : Math.round(r.p50))),
        h('td', { class: 'num' }, formatDuration(r.p99 === undefined ? undefined : Math.round(r.p99))),
        h('td', null, spark(a, r.series, 'rate', maxRate, r.errorPct > 0)),
        h('td', null, spark(a, r.series, 'p99', maxP99, false)),
        h('td', { class: 'num', title: r.calls ? `${Math.round((r.series.total.bytes ?? 0) / r.calls)} bytes a span` : '' }, bytesText(r.series.total.bytes ?? 0)),
        extra ? h('td', null, extra.cell(r)) : null);
    })));
}

export async function servicesPage(nav: Nav) {
  const st = stateOf(nav);
  const title = h('h1', null, 'Services');
  const sel = rangeSelect(nav, '/services', st);
  nav.show(title, h('p', null, 'Time: ', sel), h('p', { class: 'muted' }, 'Loading…'));
  let a: StatsAnswer;
  try {
    a = await stats(st, { by: 'service' }, nav.signal);
  } catch (e) {
    nav.show(title, h('p', null, 'Time: ', sel), errorBox(e));
    return;
  }
  if (a.series.length === 0) {
    nav.show(title, h('p', null, 'Time: ', sel), h('div', { class: 'empty' }, h('strong', null, 'No spans in this time range.'),
      ' Service health is counted as spans are stored; try a longer range, or send a first span (see Search).'));
    return;
  }
  const q = withParams(nav.params, {});
  nav.show(title, h('p', null, 'Time: ', sel, h('span', { class: 'muted' }, ` · steps of ${formatDuration(a.step * 1000)}, quantiles within ${a.relativeAccuracy * 100}%`)),
    table(a, healthRows(a, (s) => s.serviceName ?? ''), 'service', (r) => `/services/${encodeURIComponent(r.key)}${q ? '?' + q : ''}`));
}

export async function servicePage(nav: Nav) {
  const service = decodeURIComponent(nav.match[1]);
  const st = stateOf(nav);
  const path = `/services/${encodeURIComponent(service)}`;
  const sel = rangeSelect(nav, path, st);
  const title = h('h1', null, h('a', { href: `/services?${withParams(nav.params, {})}`, 'data-link': true }, 'Services'), ' / ', service);
  nav.show(title, h('p', null, 'Time: ', sel), h('p', { class: 'muted' }, 'Loading…'));
  let total: StatsAnswer, ops: StatsAnswer, calls: StatsAnswer, links: DependencyLink[];
  try {
    [total, ops, calls, links] = await Promise.all([
      stats(st, { serviceName: service, by: '' }, nav.signal),
      stats(st, { serviceName: service, by: 'spanName,kind' }, nav.signal),
      stats(st, { serviceName: service, by: 'service,remoteService', kind: 'CLIENT,PRODUCER' }, nav.signal),
      // Both sides of each call paired (the linker's), for callers too.
      api.dependencies(st.endTs, st.lookback, nav.signal).catch(() => [] as DependencyLink[]),
    ]);
  } catch (e) {
    nav.show(title, h('p', null, 'Time: ', sel), errorBox(e));
    return;
  }
  const search = (name?: string, minUs?: number) =>
    `/?${withParams(new URLSearchParams(), { serviceName: service, spanName: name, range: st.range, minDuration: minUs === undefined ? undefined : String(minUs) })}`;
  // Percentile search: the operation's spans at or above its p99 over the
  // range (Zipkin's search: the span name with a minimum duration). The
  // sketch's p99 may be up to its relative accuracy above the true one:
  // the minimum is lowered by that, so the spans at the true p99 are in.
  const slower = { head: 'traces', cell: (r: HealthRow) => r.p99 === undefined || !r.series.spanName ? null
    : h('a', { href: search(r.series.spanName, minDurationAt(r.p99, ops.relativeAccuracy)), 'data-link': true, class: 'slower' }, 'slower than p99') };
  const calledBy = calls.series.filter((x) => x.remoteServiceName);
  nav.show(title, h('p', null, 'Time: ', sel, ' · ', h('a', { href: search(), 'data-link': true }, `search traces of ${service}`)),
    total.series.length ? chart(total, total.series[0]) : h('div', { class: 'empty' }, 'No spans of this service in this time range.'),
    h('h2', null, 'Operations'),
    table(ops, healthRows(ops, (x) => `${x.spanName ?? ''}${x.kind ? ` (${x.kind.toLowerCase()})` : ''}`), 'span name', (r) => search(r.series.spanName), slower),
    calledBy.length ? h('h2', null, 'Calls to', h('span', { class: 'muted' }, ' (its client and producer spans, by remote service)')) : null,
    calledBy.length ? table(calls, healthRows({ ...calls, series: calledBy }, (x) => x.remoteServiceName ?? ''), 'remote service',
      (r) => `/services/${encodeURIComponent(r.key)}?${withParams(nav.params, {})}`) : null,
    edges(service, links, calls, st, nav));
}

// edges lists the service's callers and callees from the dependency links
// (the two sides of each call paired), with rate, errors and, for its
// callees, the p99 of its client spans to them.
function edges(service: string, links: DependencyLink[], calls: StatsAnswer, st: State, nav: Nav) {
  const mine = links.filter((l) => l.parent !== l.child && (l.parent === service || l.child === service));
  if (!mine.length) return null;
  const health = edgeHealth(mine, calls, st.lookback);
  const list = (items: DependencyLink[], other: (l: DependencyLink) => string, cls: string) => items.length
    ? h('ul', { class: `edges ${cls}` }, ...items.sort((a, b) => b.callCount - a.callCount).map((l) => h('li', { 'data-service': other(l) },
      h('a', { href: `/services/${encodeURIComponent(other(l))}?${withParams(nav.params, {})}`, 'data-link': true }, other(l)),
      ` ${edgeText(health.get(edgeKey(l.parent, l.child))!)}`)))
    : h('p', { class: 'muted' }, 'none');
  return h('section', { class: 'service-edges' },
    h('h2', null, 'Dependencies', h('span', { class: 'muted' }, ' (both sides of each call paired, as the dependency graph)')),
    h('h3', null, 'Called by'), list(mine.filter((l) => l.child === service), (l) => l.parent, 'callers'),
    h('h3', null, 'Calls'), list(mine.filter((l) => l.parent === service), (l) => l.child, 'callees'));
}

// chart is a service's p50 and p99 over the range, with its exemplars as
// markers linking to their traces.
function chart(a: StatsAnswer, series: StatsSeries) {
  const W = 900, H = 180;
  const qi = (q: number) => a.quantiles.indexOf(q);
  const marks = series.points.flatMap((p) => [p.slowest?.duration ?? 0, p.failed?.duration ?? 0]);
  const top = Math.max(1, ...series.points.map((p) => p.quantiles[qi(0.99)] ?? 0), ...marks);
  const line = (q: number) => s('path', { class: `line q${q * 100}`, d: sparkPath(a, series.points, (p) => p.quantiles[qi(q)], W, H, top, false) });
  return h('figure', { class: 'health-chart' },
    s('svg', { width: W, height: H + 20, viewBox: `0 -10 ${W} ${H + 20}`, role: 'img', 'aria-label': 'latency over time with exemplars' },
      s('line', { x1: 0, x2: W, y1: H, y2: H, class: 'axis' }),
      line(0.5), line(0.99),
      ...exemplarMarks(a, series.points, W, H, top).map((m) =>
        s('a', { href: `/traces/${m.traceId}`, 'data-link': true, class: `exemplar${m.failed ? ' failed' : ''}`, 'data-trace': m.traceId },
          s('circle', { cx: m.x, cy: m.y, r: 4 }, s('title', null, `${m.failed ? 'failed, ' : ''}${formatDuration(m.duration)}: open trace ${m.traceId}`))))),
    h('figcaption', { class: 'muted' }, `p50 and p99 (up to ${formatDuration(Math.round(top))}); a dot is the slowest span of a step, red when it failed: click to open its trace.`));
}
