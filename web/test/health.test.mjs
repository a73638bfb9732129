// Unit tests of the service health model (health.ts): rows, sparklines
// and exemplar marks from an /api/zipq/stats answer.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { fromColumns, healthRows, sparkPath, exemplarMarks, fmtRate, fmtPct, buckets, edgeHealth, edgeKey, edgeText, fmtUs, minDurationAt, statsStep } from '../.test-build/health.js';

const point = (i, calls, errors, p50, p99, extra = {}) => ({
  timestamp: 1_000_000 + i * 60_000, calls, errors, rate: calls / 60, errorRatio: calls ? errors / calls : 0,
  quantiles: [p50, p99], avg: p50, ...extra,
});
const answer = (series) => ({ start: 1_000_000, end: 1_000_000 + 5 * 60_000, step: 60_000, quantiles: [0.5, 0.99], relativeAccuracy: 0.01, series });
const total = (calls, errors, p50, p99) => ({ ...point(0, calls, errors, p50, p99), rate: calls / 300 });

test('rows: busiest first, error percentage and quantiles from the totals', () => {
  const a = answer([
    { serviceName: 'quiet', total: total(3, 0, 100, 200), points: [] },
    { serviceName: 'busy', total: total(300, 3, 1000, 9000), points: [] },
    { serviceName: 'also-quiet', total: total(3, 3, 50, 60), points: [] },
  ]);
  const rows = healthRows(a, (s) => s.serviceName);
  assert.deepEqual(rows.map((r) => r.key), ['busy', 'also-quiet', 'quiet']);
  assert.equal(rows[0].errorPct, 1);
  assert.equal(rows[0].p99, 9000);
  assert.equal(rows[1].errorPct, 100);
  assert.equal(rows[0].rate, 1);
});

test('sparklines: a rate is 0 where a step had no calls, a latency is a gap', () => {
  const a = answer([]);
  assert.equal(buckets(a), 5);
  const pts = [point(0, 60, 0, 10, 100), point(1, 120, 0, 10, 200), point(3, 60, 0, 10, 50)];
  assert.equal(sparkPath(a, pts, (p) => p.rate, 100, 10, 2, true), 'M0 5L25 0L50 10L75 5L100 10');
  assert.equal(sparkPath(a, pts, (p) => p.quantiles[1], 100, 10, 200, false), 'M0 5L25 0M75 7.5');
  assert.equal(sparkPath(a, [], (p) => p.rate, 100, 10, 0, false), '');
});

test('exemplars: one mark per slowest span, red when it failed, a second for another failed span', () => {
  const a = answer([]);
  const slow = { traceId: 't1', id: 's1', duration: 400, timestamp: (1_000_000 + 30_000) * 1000 };
  const failed = { traceId: 't2', id: 's2', duration: 100, timestamp: (1_000_000 + 150_000) * 1000 };
  const marks = exemplarMarks(a, [point(0, 2, 1, 1, 1, { slowest: slow, failed }), point(1, 1, 1, 1, 1, { slowest: failed, failed })], 300, 100, 400);
  assert.deepEqual(marks.map((m) => [m.traceId, m.failed, m.x, m.y]), [['t1', false, 30, 0], ['t2', true, 150, 75], ['t2', true, 150, 75]]);
});

test('rates and percentages read as a person would say them', () => {
  assert.deepEqual([0, 0.5, 0.01, 0.0001, 2.34, 1234.5, 1 / 86400].map(fmtRate), ['0/s', '30/min', '36/h', '8.6/day', '2.3/s', '1235/s', '1/day']);
  assert.deepEqual([0, 0.05, 12.345, 100].map(fmtPct), ['0%', '<0.1%', '12.3%', '100%']);
});

test('edges: rate and errors from the paired links, p99 from the caller\'s client spans to the callee', () => {
  const links = [{ parent: 'web', child: 'db', callCount: 600, errorCount: 6 }, { parent: 'web', child: 'cache', callCount: 60 }];
  const a = answer([
    { serviceName: 'web', remoteServiceName: 'db', total: total(590, 6, 800, 45_000), points: [] },
    { serviceName: 'db', remoteServiceName: 'web', total: total(1, 0, 1, 2), points: [] }, // the other direction: not this edge
  ]);
  const e = edgeHealth(links, a, 600_000);
  assert.deepEqual(e.get(edgeKey('web', 'db')), { rate: 1, errorPct: 1, p99: 45_000 });
  assert.deepEqual(e.get(edgeKey('web', 'cache')), { rate: 0.1, errorPct: 0, p99: undefined });
  assert.equal(edgeText(e.get(edgeKey('web', 'db'))), '1/s · 1% err · p99 45ms');
  assert.equal(edgeText(e.get(edgeKey('web', 'cache'))), '6/min · 0% err');
  assert.deepEqual([447_031, 56_972, 999, 1_234_567, 12_968].map(fmtUs), ['447ms', '57ms', '999µs', '1.23s', '13ms']);
  assert.equal(edgeHealth(links, undefined, 600_000).get(edgeKey('web', 'db')).p99, undefined); // no metrics: counts only
});

test('the minimum duration of a percentile search: the quantile less the sketch accuracy, at least 1 µs', () => {
  assert.equal(minDurationAt(400_000, 0.01), 396_039);
  assert.equal(minDurationAt(0.5, 0.01), 1);
});

test('stats step: minutes up to an hour, whole minutes below a day, whole hours from a day', () => {
  const HOUR = 3_600_000;
  assert.equal(statsStep(15 * 60_000, 60), 60_000);
  assert.equal(statsStep(HOUR, 60), 60_000);
  assert.equal(statsStep(6 * HOUR, 60), 6 * 60_000);
  assert.equal(statsStep(24 * HOUR, 60), HOUR);
  assert.equal(statsStep(2 * 24 * HOUR, 60), HOUR);
  assert.equal(statsStep(7 * 24 * HOUR, 60), 3 * HOUR);
});

test('columns: the same points as an object a point, exemplars at their bucket', () => {
  const slow = { traceId: 'a'.repeat(32), id: '1'.repeat(16), duration: 9000, timestamp: 1_000_000_000 };
  const failed = { traceId: 'b'.repeat(32), id: '2'.repeat(16), duration: 800, timestamp: 1_060_000_000 };
  const cols = {
    start: 1_000_000, end: 1_000_000 + 5 * 60_000, step: 60_000, quantiles: [0.5, 0.99], relativeAccuracy: 0.01,
    series: [{
      serviceName: 'web', total: total(9, 1, 100, 9000),
      columns: { bucket: [0, 3], calls: [6, 3], errors: [0, 1], avg: [100, 90], bytes: [600, 300], quantiles: [[100, 80], [9000, 700]] },
      exemplars: [{ bucket: 3, failed }, { bucket: 0, slowest: slow }],
    }],
  };
  assert.deepEqual(fromColumns(cols), answer([{
    serviceName: 'web', total: total(9, 1, 100, 9000),
    points: [
      { ...point(0, 6, 0, 100, 9000), bytes: 600, slowest: slow },
      { ...point(3, 3, 1, 80, 700), avg: 90, bytes: 300, failed },
    ],
  }]));
  const none = fromColumns({ ...cols, series: [{ ...cols.series[0], exemplars: [] }] });
  assert.ok(none.series[0].points.every((p) => !('slowest' in p) && !('failed' in p)));
});
