// Unit tests of the UI's pure model (tree, skew, orphans, critical path,
// find, statistics, diff, ticks, palette): `npm test` compiles src/ with
// tsc into .test-build/ and runs these with node --test.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { buildTrace, visibleRows, collapseBelow, shownDepth } from '../.test-build/model.js';
import { findRows, matchedRows, criticalPath, traceStats, diffTraces, niceTicks, selfTime, relativeTime } from '../.test-build/analyze.js';
import { palette, colorAt, ERROR_COLOR } from '../.test-build/palette.js';
import { windowOf } from '../.test-build/timerange.js';

const ms = 1000;
const span = (id, parentId, kind, service, start, dur, extra = {}) => ({
  traceId: 'abc', id, parentId, kind, name: `op-${id}`, timestamp: start, duration: dur,
  localEndpoint: { serviceName: service }, ...extra,
});

// The skew case of issue 13: the server's clock is 180 ms behind; the
// root lasted 407 ms.
const T0 = 1_700_000_000_000_000;
const skewed = [
  span('1', undefined, 'SERVER', 'frontend', T0, 407 * ms),
  span('2', '1', 'CLIENT', 'frontend', T0 + 10 * ms, 300 * ms, { remoteEndpoint: { serviceName: 'api' } }),
  span('2', '1', 'SERVER', 'api', T0 + 10 * ms - 180 * ms + 20 * ms, 260 * ms, { shared: true }),
  span('3', '2', 'CLIENT', 'api', T0 - 150 * ms + 40 * ms, 100 * ms, { remoteEndpoint: { serviceName: 'redis' } }),
];

test('client and server halves are one row, the callee of a client span is its remote service', () => {
  const t = buildTrace(skewed);
  assert.equal(t.rows.length, 3);
  assert.equal(t.rows[1].kind, 'CLIENT+SERVER');
  assert.equal(t.rows[1].service, 'api');
  assert.equal(t.rows[1].remoteService, undefined);
  assert.equal(t.rows[2].remoteService, 'redis');
  assert.deepEqual(t.rows.map((r) => r.depth), [0, 1, 2]);
});

test('clock skew: the server half and its subtree move into the client window', () => {
  const t = buildTrace(skewed);
  const row = t.rows[1];
  const server = row.halves.find((h) => h.side === 'server');
  const client = row.halves.find((h) => h.side === 'client');
  assert.equal(client.start, T0 + 10 * ms, 'client untouched');
  assert.equal(server.start, T0 + 10 * ms + 20 * ms, 'server centred: (300-260)/2 after the client start');
  assert.equal(row.skewShift, 180 * ms);
  assert.equal(t.rows[2].timestamp, T0 - 110 * ms + 180 * ms, 'child of the server shifted by the same amount');
  assert.equal(t.duration, 407 * ms, 'duration from the corrected spans, not 531.9 ms');
  assert.equal(t.start, T0);
  assert.equal(t.corrected, 1);
  assert.ok(!t.rows.some((r) => r.skew), 'no row starts before its parent once corrected');
});

test('a correction moves only the skewed host: its callee on a good clock stays put', () => {
  // api's clock is 200 ms behind: its server half and its client call to
  // db are early; db's server (a good clock) is not.
  const t = buildTrace([
    span('1', undefined, 'CLIENT', 'web', T0, 100 * ms),
    span('1', undefined, 'SERVER', 'api', T0 + 10 * ms - 200 * ms, 80 * ms, { shared: true }),
    span('2', '1', 'CLIENT', 'api', T0 + 20 * ms - 200 * ms, 30 * ms),
    span('2', '1', 'SERVER', 'db', T0 + 25 * ms, 20 * ms, { shared: true }),
  ]);
  const db = t.rows[1];
  assert.equal(t.rows[0].skewShift, 200 * ms);
  assert.equal(db.halves.find((h) => h.side === 'client').start, T0 + 20 * ms, 'api\'s client half corrected');
  assert.equal(db.halves.find((h) => h.side === 'server').start, T0 + 25 * ms, 'db\'s own half untouched');
  assert.equal(db.skewShift, undefined);
  assert.equal(t.corrected, 1);
});

test('a server inside its client window is left alone', () => {
  const t = buildTrace([
    span('1', undefined, 'CLIENT', 'a', T0, 100 * ms),
    span('1', undefined, 'SERVER', 'b', T0 + 10 * ms, 50 * ms, { shared: true }),
  ]);
  assert.equal(t.rows[0].skewShift, undefined);
  assert.equal(t.rows[0].halves.find((h) => h.side === 'server').start, T0 + 10 * ms);
});

test('a SERVER child of a CLIENT span (own span IDs) is corrected too', () => {
  const t = buildTrace([
    span('1', undefined, 'CLIENT', 'a', T0, 100 * ms),
    span('2', '1', 'SERVER', 'b', T0 - 500 * ms, 60 * ms),
  ]);
  assert.equal(t.rows[1].timestamp, T0 + 20 * ms);
  assert.equal(t.duration, 100 * ms);
});

test('annotations say which half logged them, tags stay per half', () => {
  const t = buildTrace([
    span('1', undefined, 'CLIENT', 'a', T0, 100 * ms, { tags: { 'http.status': '500' }, annotations: [{ timestamp: T0 + 1, value: 'ws' }] }),
    span('1', undefined, 'SERVER', 'b', T0 + 10 * ms, 50 * ms, { shared: true, tags: { 'http.status': '200' }, annotations: [{ timestamp: T0 + 10 * ms + 1, value: 'wr' }] }),
  ]);
  const r = t.rows[0];
  assert.deepEqual(r.annotations.map((a) => [a.value, a.side, a.service]), [['ws', 'client', 'a'], ['wr', 'server', 'b']]);
  assert.deepEqual(r.halves.map((h) => h.span.tags['http.status']), ['500', '200']);
});

test('orphans are marked with the parent ID they lack, after the real root', () => {
  const t = buildTrace([
    span('9', 'ffff', 'SERVER', 'lost', T0 - 5 * ms, 1 * ms),
    span('1', undefined, 'SERVER', 'root', T0, 10 * ms),
    span('2', '1', undefined, 'root', T0 + 1 * ms, 2 * ms),
  ]);
  assert.equal(t.roots.length, 2);
  assert.equal(t.roots[0].id, '1', 'the span without a parent ID is the root');
  assert.equal(t.roots[1].orphanOf, 'ffff');
  assert.equal(t.orphans, 1);
  assert.equal(t.rootService, 'root');
});

test('a cycle of parent IDs does not hang or lose rows', () => {
  const t = buildTrace([span('1', '2', undefined, 'a', T0, 1), span('2', '1', undefined, 'a', T0, 1)]);
  assert.equal(t.rows.length, 2);
});

test('collapse by level', () => {
  const t = buildTrace(skewed);
  assert.equal(visibleRows(t, collapseBelow(t, 0)).length, 1);
  assert.equal(visibleRows(t, collapseBelow(t, 1)).length, 2);
  assert.equal(shownDepth(t, collapseBelow(t, 1)), 1);
  assert.equal(shownDepth(t, new Set()), 2);
});

test('find matches service, name, remote service, ids, tags and annotations', () => {
  const t = buildTrace([
    span('a1', undefined, 'SERVER', 'frontend', T0, 10, { tags: { error: 'boom', 'http.path': '/cart' } }),
    span('a2', 'a1', 'CLIENT', 'frontend', T0, 5, { remoteEndpoint: { serviceName: 'Redis' }, annotations: [{ timestamp: T0, value: 'cache miss' }] }),
    span('a3', 'a1', undefined, 'worker', T0, 5, { name: 'compute' }),
  ]);
  const ids = (q) => findRows(t, q).map((r) => r.id);
  assert.deepEqual(ids('error'), ['a1']);
  assert.deepEqual(ids('redis'), ['a2']);
  assert.deepEqual(ids('miss'), ['a2']);
  assert.deepEqual(ids('a3'), ['a3']);
  assert.deepEqual(ids('frontend'), ['a1', 'a2']);
  assert.deepEqual(ids('frontend /cart'), ['a1'], 'every token must match');
  assert.deepEqual(ids('http.path=/cart'), ['a1']);
  assert.deepEqual(ids('http.path=/car'), [], 'key=value is exact');
  assert.deepEqual(ids('  '), []);
});

test('a search\'s matched spans: their rows in timeline order, a client and server half one row, unknown IDs ignored', () => {
  const t = buildTrace(skewed);
  const ids = (m) => matchedRows(t, m).map((r) => r.id);
  assert.deepEqual(ids(['3', '1']), ['1', '3'], 'timeline order, not the order given');
  assert.deepEqual(ids(['2', '2']), ['2'], 'both halves of span 2 are one row');
  assert.deepEqual(ids(['9']), []);
  assert.deepEqual(ids([]), []);
});

test('critical path: the last-finishing child, then back in the parent before it', () => {
  // root 0..100; A 10..25; B 30..90 (finishes last); C 50..60 inside B;
  // D 20..35 overlaps B's start, so (as in Jaeger) it is not on the path.
  const t = buildTrace([
    span('r', undefined, undefined, 's', 0, 100),
    span('A', 'r', undefined, 's', 10, 15),
    span('D', 'r', undefined, 's', 20, 15),
    span('B', 'r', undefined, 's', 30, 60),
    span('C', 'B', undefined, 's', 50, 10),
  ]);
  const cp = criticalPath(t);
  const by = Object.fromEntries([...cp].map(([r, s]) => [r.id, s.map((x) => [x.from, x.to])]));
  assert.deepEqual(by, {
    r: [[0, 10], [25, 30], [90, 100]],
    B: [[30, 50], [60, 90]],
    C: [[50, 60]],
    A: [[10, 25]],
  });
  const total = [...cp.values()].flat().reduce((n, x) => n + x.to - x.from, 0);
  assert.equal(total, 100, 'the path covers the trace once');
});

test('critical path clips children that overrun their parent', () => {
  const t = buildTrace([span('r', undefined, undefined, 's', 0, 100), span('x', 'r', undefined, 's', 80, 50)]);
  const by = Object.fromEntries([...criticalPath(t)].map(([r, s]) => [r.id, s.map((x) => [x.from, x.to])]));
  assert.deepEqual(by, { r: [[0, 80]], x: [[80, 100]] });
});

test('self time and statistics per service and name', () => {
  const t = buildTrace([
    span('r', undefined, undefined, 's', 0, 100, { name: 'root' }),
    span('a', 'r', undefined, 'db', 10, 30, { name: 'q' }),
    span('b', 'r', undefined, 'db', 20, 40, { name: 'q', tags: { error: '' } }),
  ]);
  assert.equal(selfTime(t.rows[0]), 50, 'children cover 10..60');
  const st = traceStats(t);
  const q = st.find((s) => s.name === 'q');
  assert.deepEqual([q.count, q.total, q.min, q.max, q.avg, q.errors], [2, 70, 30, 40, 35, 1]);
  assert.equal(st[0].name, 'q', 'sorted by self time');
});

test('diff: added, missing, slower, more by service+name path', () => {
  const a = buildTrace([
    span('r', undefined, undefined, 'fe', 0, 100, { name: 'get' }),
    span('1', 'r', undefined, 'db', 0, 10, { name: 'select' }),
    span('2', 'r', undefined, 'cache', 0, 10, { name: 'get' }),
  ]);
  const b = buildTrace([
    span('r', undefined, undefined, 'fe', 0, 200, { name: 'get' }),
    span('1', 'r', undefined, 'db', 0, 10, { name: 'select' }),
    span('3', 'r', undefined, 'db', 0, 10, { name: 'select' }),
    span('4', 'r', undefined, 'queue', 0, 10, { name: 'send' }),
  ]);
  const d = Object.fromEntries(diffTraces(a, b).map((n) => [n.path, n.status]));
  assert.deepEqual(d, {
    'fe:get': 'slower',
    'fe:get/db:select': 'more',
    'fe:get/cache:get': 'missing',
    'fe:get/queue:send': 'added',
  });
  const errs = diffTraces(a, buildTrace([span('r', undefined, undefined, 'fe', 0, 100, { name: 'get', tags: { error: 'x' } })]));
  assert.deepEqual(errs.filter((n) => n.path === 'fe:get').map((n) => [n.aErrors, n.bErrors]), [[0, 1]]);
  const same = diffTraces(a, a);
  assert.ok(same.every((n) => n.status === 'same'));
});

test('ruler ticks are round and never past the end', () => {
  assert.deepEqual(niceTicks(397.872 * ms, 5), [0, 100 * ms, 200 * ms, 300 * ms]);
  assert.deepEqual(niceTicks(1000, 6), [0, 200, 400, 600, 800, 1000]);
  for (const span of [1, 7, 99.468 * ms, 12_345_678]) {
    const t = niceTicks(span, 6);
    assert.ok(t.length >= 2 && t.length <= 7, `${span}: ${t}`);
    assert.ok(t[t.length - 1] <= span);
    const step = t[1] - t[0];
    assert.match(String(step / 10 ** Math.floor(Math.log10(step))), /^(1|2|5)$/);
  }
});

test('palette: distinct colours for distinct services, never the error colour', () => {
  const names = Array.from({ length: 60 }, (_, i) => `svc-${i}`).concat(['frontend', 'api-gateway', 'orders']);
  const color = palette(names);
  const used = names.map(color);
  assert.equal(new Set(used).size, names.length);
  assert.ok(!used.includes(ERROR_COLOR));
  for (let i = 0; i < 200; i++) {
    const c = colorAt(i);
    const m = /^hsl\((\d+) /.exec(c);
    if (m) assert.ok(+m[1] >= 30 && +m[1] < 300, `hue ${c} is not red`);
  }
});

test('preset ranges pinned by endTs in the URL', () => {
  const w = windowOf(new URLSearchParams('range=1h&endTs=1000000'), '15m', 5_000_000);
  assert.deepEqual(w, { endTs: 1_000_000, lookback: 3_600_000 });
  assert.deepEqual(windowOf(new URLSearchParams('range=1h'), '15m', 5_000_000), { endTs: 5_000_000, lookback: 3_600_000 });
});

test('relative time', () => {
  assert.equal(relativeTime(1_000_000 * 1000 - 30_000_000, 1_000_000), '30s ago');
  assert.equal(relativeTime((1_000_000 - 7_200_000) * 1000, 1_000_000), '2 h ago');
});

test('dependency focus keeps the links within N hops', async () => {
  const { neighbourhood } = await import('../.test-build/analyze.js');
  const links = [['a', 'b'], ['b', 'c'], ['c', 'd'], ['x', 'y']].map(([parent, child]) => ({ parent, child }));
  const names = (ls) => ls.map((l) => l.parent + l.child);
  assert.deepEqual(names(neighbourhood(links, 'b', 1)), ['ab', 'bc']);
  assert.deepEqual(names(neighbourhood(links, 'b', 2)), ['ab', 'bc', 'cd']);
  assert.deepEqual(names(neighbourhood(links, 'y', 3)), ['xy']);
});

test('the search form is written as one TraceQL spanset filter', async () => {
  const { formToTraceQL, duration } = await import('../.test-build/traceql.js');
  assert.equal(formToTraceQL({}), '{ }');
  assert.equal(formToTraceQL({ serviceName: 'checkout', spanName: 'post /cart', remoteServiceName: 'db',
    annotationQuery: 'error and http.status_code=503 and retry and my key=a"b', minDuration: 250_000, maxDuration: 2_000_000 }),
    '{ resource.service.name = "checkout" && name = "post /cart" && span.peer.service = "db" && status = error'
    + ' && span.http.status_code = "503" && event:name = "retry" && span."my key" = "a\\"b" && duration >= 250ms && duration <= 2s }');
  assert.equal(duration(1500), '1500us');
  assert.equal(formToTraceQL({ serviceName: 'a', minDuration: 1000, minTraceDuration: 2_000_000, maxTraceDuration: 3_000_000 }),
    '{ resource.service.name = "a" && duration >= 1ms && trace:duration >= 2s && trace:duration <= 3s }');
});

test('the column of a TraceQL error, and what to suggest at the caret', async () => {
  const { errorColumn, completion, fieldNames } = await import('../.test-build/traceql.js');
  assert.equal(errorColumn('400 Bad Request: q: invalid TraceQL at column 8: unexpected "}"'), 8);
  assert.equal(errorColumn('400 Bad Request: limit'), undefined);
  assert.deepEqual(completion('{ resource.se', 13), { kind: 'field', prefix: 'resource.se', from: 2 });
  assert.deepEqual(completion('{ name = "a" && sta', 19), { kind: 'field', prefix: 'sta', from: 16 });
  assert.deepEqual(completion('{ resource.service.name = "che', 30), { kind: 'value', field: 'resource.service.name', prefix: 'che', from: 27 });
  assert.deepEqual(completion('{ status != ', 12), { kind: 'value', field: 'status', prefix: '', from: 12 });
  assert.deepEqual(completion('{ name = "a" }', 14), { kind: 'none' });
  assert.deepEqual(fieldNames([{ name: 'resource', tags: ['service.name'] }, { name: 'span', tags: ['http.method', 'a b'] }, { name: 'intrinsic', tags: ['status', 'name'] }]),
    ['name', 'resource.service.name', 'span."a b"', 'span.http.method', 'status']);
});
