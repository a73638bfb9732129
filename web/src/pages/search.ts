import { api, ApiError, type Span, type TempoValue } from '../api';
import { clear, errorBox, formatDuration, formatTime, h, s } from '../dom';
import { buildTrace, type Trace } from '../model';
import { relativeTime } from '../analyze';
import { ERROR_COLOR, palette } from '../palette';
import { navigate, withParams, type Nav } from '../router';
import { CUSTOM, RANGES, rangeOf, windowOf } from '../timerange';
import { completion, errorColumn, fieldNames, formToTraceQL } from '../traceql';
import { minDurationAt } from '../health';

// The search page: a form whose state lives in the URL (deep links and the
// back button work, and a submitted search pins its end time, so a shared
// link shows the same traces later), a scatter plot of the results, and
// one dense row per trace.
export async function searchPage(nav: Nav) {
  const params = nav.params;
  const [services, cfg] = await Promise.all([
    api.services(nav.signal).catch((e: unknown) => e as Error),
    api.config().catch(() => undefined),
  ]);
  if (nav.signal.aborted) return;
  if (cfg && cfg.searchEnabled === false) {
    nav.show(h('div', { class: 'empty search-disabled' }, h('h1', null, 'Search is turned off'),
      h('p', null, 'This server has search disabled (searchEnabled is false in /config.json). Open a trace by its ID in the box above, or open a JSON file.')));
    return;
  }
  if (Array.isArray(services) && services.length === 0) {
    nav.show(firstSpanHelp());
    return;
  }
  const failed = services instanceof Error ? services : null;
  const known = Array.isArray(services) ? services : [];
  // The default range and limit come from /config.json (defaultLookback,
  // queryLimit), as Zipkin's UI reads them.
  const lookbackKey = RANGES.find((r) => r.ms === cfg?.defaultLookback)?.key ?? '15m';
  const defaultLimit = String(cfg?.queryLimit ?? 10);

  const field = (label: string, input: HTMLElement) => h('label', { class: 'field' }, h('span', null, label), input);
  const select = (name: string, options: string[], value: string, anyLabel = 'any') =>
    h('select', { name, 'aria-label': name }, h('option', { value: '' }, anyLabel),
      ...options.map((o) => h('option', { value: o, selected: o === value }, o)));

  const svcSel = select('serviceName', known, params.get('serviceName') ?? '');
  const nameSel = select('spanName', [], '');
  const remoteSel = select('remoteServiceName', [], '');
  const fillNames = async (keep?: boolean) => {
    const svc = svcSel.value;
    const [names, remotes] = svc ? await Promise.all([api.spanNames(svc, nav.signal), api.remoteServices(svc, nav.signal)]).catch(() => [[], []]) : [[], []];
    const wantName = keep ? params.get('spanName') ?? '' : '';
    const wantRemote = keep ? params.get('remoteServiceName') ?? '' : '';
    clear(nameSel, h('option', { value: '' }, 'any'), ...names.map((n) => h('option', { value: n, selected: n === wantName }, n)));
    clear(remoteSel, h('option', { value: '' }, 'any'), ...remotes.map((n) => h('option', { value: n, selected: n === wantRemote }, n)));
  };
  svcSel.addEventListener('change', () => void fillNames(false));

  const tags = tagEditor(params.get('annotationQuery') ?? '', nav.signal);

  const durInput = (name: string) => {
    const us = Number(params.get(name) ?? '');
    const unit = us && us % 1_000_000 === 0 ? 's' : 'ms';
    const value = us ? String(unit === 's' ? us / 1_000_000 : us / 1000) : '';
    const input = h('input', { type: 'number', min: 0, step: 'any', name, value, size: 6, 'aria-label': name });
    const units = h('select', { name: `${name}Unit`, 'aria-label': `${name} unit` }, h('option', { value: 'ms', selected: unit === 'ms' }, 'ms'), h('option', { value: 's', selected: unit === 's' }, 's'));
    return { input, units, us: () => (input.value ? Math.round(Number(input.value) * (units.value === 's' ? 1_000_000 : 1000)) : undefined) };
  };
  const minDur = durInput('minDuration');
  const maxDur = durInput('maxDuration');
  const minTrace = durInput('minTraceDuration');
  const maxTrace = durInput('maxTraceDuration');
  // Percentile search: spans of the service (and span name) slower than
  // their quantile over the search's time range, from the service metrics.
  const quantileSel = h('select', { name: 'minDurationQuantile', 'aria-label': 'slower than' },
    ...[['', 'any'], ['0.5', 'p50'], ['0.9', 'p90'], ['0.95', 'p95'], ['0.99', 'p99']].map(([v, l]) =>
      h('option', { value: v, selected: v === (params.get('minDurationQuantile') ?? '') }, l)));

  const range = rangeOf(params, lookbackKey).key;
  const rangeSel = h('select', { name: 'range', 'aria-label': 'time range' },
    ...[...RANGES, CUSTOM].map((r) => h('option', { value: r.key, selected: r.key === range }, r.label)));
  const toLocal = (ms: number) => new Date(ms - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const win = windowOf(params, lookbackKey);
  const fromInput = h('input', { type: 'datetime-local', name: 'from', value: toLocal(win.endTs - win.lookback), 'aria-label': 'from' });
  const toInput = h('input', { type: 'datetime-local', name: 'to', value: toLocal(win.endTs), 'aria-label': 'to' });
  const custom = h('span', { class: 'custom-range', hidden: range !== 'custom' }, fromInput, ' – ', toInput);
  rangeSel.addEventListener('change', () => { custom.hidden = rangeSel.value !== 'custom'; });

  const limit = h('input', { type: 'number', name: 'limit', min: 1, max: 1000, value: params.get('limit') ?? defaultLimit, size: 4, 'aria-label': 'limit' });
  const sortSel = h('select', { name: 'sort', 'aria-label': 'sort' },
    ...[['newest', 'newest first'], ['longest', 'longest first'], ['shortest', 'shortest first']].map(([v, l]) => h('option', { value: v, selected: v === (params.get('sort') ?? 'newest') }, l)));

  const results = h('section', { id: 'results', 'aria-live': 'polite' });
  // Two ways to ask: the builder (Zipkin's search) and a TraceQL box; the
  // builder's "Edit as TraceQL" writes its fields as TraceQL.
  const traceql = traceqlBox(params.get('q') ?? '', nav.signal);
  const builder = h('span', { class: 'builder-fields' },
    field('Service', svcSel), field('Span name', nameSel), field('Remote service', remoteSel),
    field('Tags / annotations', tags.el),
    field('Min duration', h('span', null, minDur.input, minDur.units)),
    field('Max duration', h('span', null, maxDur.input, maxDur.units)),
    field('Slower than', quantileSel),
    field('Trace duration', h('span', null, 'min ', minTrace.input, minTrace.units, ' max ', maxTrace.input, maxTrace.units)));
  const traceqlField = field('TraceQL', traceql.el);
  let mode: 'builder' | 'traceql' = params.has('q') ? 'traceql' : 'builder';
  const builderTab = h('button', { type: 'button', class: 'tab', 'data-mode': 'builder' }, 'Builder');
  const traceqlTab = h('button', { type: 'button', class: 'tab', 'data-mode': 'traceql' }, 'TraceQL');
  const showMode = () => {
    builder.hidden = mode !== 'builder';
    traceqlField.hidden = mode !== 'traceql';
    builderTab.setAttribute('aria-pressed', String(mode === 'builder'));
    traceqlTab.setAttribute('aria-pressed', String(mode === 'traceql'));
  };
  builderTab.addEventListener('click', () => { mode = 'builder'; showMode(); });
  traceqlTab.addEventListener('click', () => { mode = 'traceql'; showMode(); traceql.input.focus(); });
  const asTraceQL = h('button', { type: 'button', class: 'as-traceql', onclick: async () => {
    // TraceQL has no quantiles: "slower than p95" is written as the
    // duration the service metrics give it now, as the API resolves it.
    let minDuration = minDur.us();
    if (quantileSel.value && svcSel.value) {
      const w = windowOf(new URLSearchParams({ range: rangeSel.value }), lookbackKey);
      const a = await api.stats({ serviceName: svcSel.value, spanName: nameSel.value || undefined, endTs: w.endTs, lookback: w.lookback,
        step: w.lookback, by: '', quantile: quantileSel.value }, nav.signal).catch(() => undefined);
      const q = a?.series[0]?.total.quantiles[0];
      if (a && q !== undefined) minDuration = minDurationAt(q, a.relativeAccuracy);
    }
    traceql.input.value = formToTraceQL({ serviceName: svcSel.value, spanName: nameSel.value, remoteServiceName: remoteSel.value,
      annotationQuery: tags.value(), minDuration, maxDuration: maxDur.us(), minTraceDuration: minTrace.us(), maxTraceDuration: maxTrace.us() });
    mode = 'traceql';
    showMode();
  } }, 'Edit as TraceQL');
  const form = h('form', { class: 'search', role: 'search' },
    h('span', { class: 'tabs', role: 'group', 'aria-label': 'search with' }, builderTab, traceqlTab),
    builder, traceqlField,
    field('Time', h('span', null, rangeSel, custom)), field('Limit', limit), field('Sort', sortSel),
    h('button', { type: 'submit', class: 'primary' }, 'Find traces'), asTraceQL);
  showMode();

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    const set = (k: string, v: string | number | undefined) => { if (v !== undefined && v !== '') q.set(k, String(v)); };
    if (mode === 'traceql') {
      q.set('q', traceql.input.value.trim() || '{ }');
    } else {
      set('serviceName', svcSel.value); set('spanName', nameSel.value); set('remoteServiceName', remoteSel.value);
      set('annotationQuery', tags.value()); set('minDuration', minDur.us()); set('maxDuration', maxDur.us());
      set('minDurationQuantile', quantileSel.value); set('minTraceDuration', minTrace.us()); set('maxTraceDuration', maxTrace.us());
    }
    set('range', rangeSel.value);
    if (rangeSel.value === 'custom') {
      const from = new Date(fromInput.value).getTime(), to = new Date(toInput.value).getTime();
      set('endTs', to); set('lookback', Math.max(1, to - from));
    } else {
      set('endTs', Date.now()); // pinned: the link shows these traces later too
    }
    set('limit', limit.value); set('sort', sortSel.value);
    navigate(`/?${q}`);
  });
  nav.show(h('h1', null, 'Find a trace'),
    failed ? errorBox(failed, 'The service list could not be read; you can still search.') : null, form, results);
  await fillNames(true);
  if ([...params.keys()].length) await runSearch(nav, results, params, lookbackKey, defaultLimit);
}

// tagEditor edits annotationQuery as chips: each `key=value` or `key`
// term is one chip (× removes it); the input adds one, with the server's
// autocomplete keys and values as suggestions.
function tagEditor(initial: string, signal: AbortSignal) {
  const terms = initial.split(/\s+and\s+/i).map((x) => x.trim()).filter(Boolean);
  const chips = h('span', { class: 'tag-chips' });
  const list = h('datalist', { id: 'tag-suggestions' });
  const input = h('input', { name: 'tag', list: 'tag-suggestions', placeholder: 'error or http.method=GET, Enter adds', size: 26, 'aria-label': 'add a tag' });
  const draw = () => clear(chips, ...terms.map((term, i) => h('span', { class: 'chip tag-chip', 'data-term': term }, term,
    h('button', { type: 'button', class: 'chip-x', 'aria-label': `remove ${term}`, onclick: () => { terms.splice(i, 1); draw(); } }, '×'))));
  const add = () => {
    const v = input.value.trim();
    if (v && !terms.includes(v)) terms.push(v);
    input.value = '';
    draw();
  };
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); add(); } });
  input.addEventListener('change', () => { if (input.value.trim() && !input.value.trim().endsWith('=')) add(); });
  api.autocompleteKeys(signal).then((keys) => clear(list, ...keys.map((k) => h('option', { value: `${k}=` })))).catch(() => {});
  input.addEventListener('input', async () => {
    const [key, partial] = input.value.split('=', 2);
    if (partial === undefined || !key) return;
    const values = await api.autocompleteValues(key.trim(), signal).catch(() => [] as string[]);
    clear(list, ...values.map((v) => h('option', { value: `${key.trim()}=${v}` })));
  });
  draw();
  return {
    el: h('span', { class: 'tag-editor' }, chips, input, list),
    // A term still in the box counts, so typing and pressing Find works.
    value: () => [...terms, ...(input.value.trim() ? [input.value.trim()] : [])].join(' and '),
  };
}

// traceqlBox is the TraceQL input: suggestions at the caret from Tempo's
// tags API (scoped names, then a field's values after =).
function traceqlBox(initial: string, signal: AbortSignal) {
  const list = h('datalist', { id: 'traceql-suggestions' });
  const input = h('input', { name: 'q', class: 'traceql-input', list: 'traceql-suggestions', value: initial, spellcheck: false,
    autocomplete: 'off', placeholder: '{ resource.service.name = "checkout" && status = error }', 'aria-label': 'TraceQL query' });
  let names: Promise<string[]> | null = null;
  const values = new Map<string, Promise<TempoValue[]>>();
  input.addEventListener('input', async () => {
    const text = input.value;
    const c = completion(text, input.selectionStart ?? text.length);
    if (c.kind === 'none') return;
    const head = text.slice(0, c.from);
    let options: string[];
    if (c.kind === 'field') {
      names ??= api.tempoTags(signal).then(fieldNames).catch(() => { names = null; return []; });
      options = (await names).filter((n) => n.startsWith(c.prefix)).map((n) => head + n);
    } else {
      if (!values.has(c.field)) values.set(c.field, api.tempoTagValues(c.field, signal).catch(() => []));
      const vs = (await values.get(c.field)) ?? [];
      options = vs.filter((v) => v.value.startsWith(c.prefix))
        .map((v) => head.replace(/"$/, '') + (v.type === 'string' ? JSON.stringify(v.value) : v.value));
    }
    if (input.value === text) clear(list, ...options.slice(0, 50).map((o) => h('option', { value: o })));
  });
  return { el: h('span', { class: 'traceql-box' }, input, list), input };
}

// Matched is what a TraceQL search matched in one trace: how many spans,
// and the IDs of those it listed.
interface Matched { count: number; spans: string[] }

// runTraceQL searches with Tempo's API and shows the traces found, each
// with how many spans matched and a link that opens the trace with them
// highlighted (up to 100 a trace).
async function runTraceQL(nav: Nav, out: HTMLElement, p: URLSearchParams, lookbackKey: string, defaultLimit: string) {
  const { endTs, lookback } = windowOf(p, lookbackKey);
  const q = p.get('q') ?? '{ }';
  clear(out, h('p', { class: 'muted' }, 'Searching…'));
  let traces: Trace[];
  const matched = new Map<string, Matched>();
  try {
    const res = await api.tempoSearch({ q, start: Math.floor((endTs - lookback) / 1000), end: Math.ceil(endTs / 1000),
      limit: p.get('limit') ?? defaultLimit, spss: 100 }, nav.signal);
    for (const t of res.traces) {
      const sets = t.spanSets ?? [];
      matched.set(t.traceID, { count: sets.reduce((n, s) => n + s.matched, 0),
        spans: [...new Set(sets.flatMap((s) => s.spans.map((x) => x.spanID)))].slice(0, 100) });
    }
    const ids = [...matched.keys()];
    const found = ids.length === 0 ? [] : ids.length === 1 ? [await api.trace(ids[0], nav.signal)].filter((x): x is Span[] => !!x)
      : await api.traceMany(ids, nav.signal);
    traces = found.map(buildTrace);
  } catch (e) {
    if (nav.signal.aborted) return;
    const col = e instanceof ApiError && e.status === 400 ? errorColumn(e.message) : undefined;
    clear(out, errorBox(e), col ? h('pre', { class: 'traceql-error', 'aria-label': 'where the query is wrong' },
      `${q}\n${' '.repeat(col - 1)}^`) : null);
    return;
  }
  if (nav.signal.aborted) return;
  showResults(out, p, endTs, traces, (id) => matched.get(id));
}

async function runSearch(nav: Nav, out: HTMLElement, p: URLSearchParams, lookbackKey: string, defaultLimit: string) {
  if (p.has('q')) return runTraceQL(nav, out, p, lookbackKey, defaultLimit);
  const { endTs, lookback } = windowOf(p, lookbackKey);
  const minDuration = p.get('minDuration') ?? undefined;
  const maxDuration = p.get('maxDuration') ?? undefined;
  const query: Record<string, string | undefined> = {
    serviceName: p.get('serviceName') ?? undefined, spanName: p.get('spanName') ?? undefined,
    remoteServiceName: p.get('remoteServiceName') ?? undefined, annotationQuery: p.get('annotationQuery') ?? undefined,
    // The API, like Zipkin's, takes maxDuration only with minDuration: a
    // maximum alone means "from 1 µs".
    minDuration: minDuration ?? (maxDuration && !p.get('minDurationQuantile') ? '1' : undefined), maxDuration,
    minDurationQuantile: p.get('minDurationQuantile') ?? undefined,
    minTraceDuration: p.get('minTraceDuration') ?? undefined, maxTraceDuration: p.get('maxTraceDuration') ?? undefined,
    endTs: String(endTs), lookback: String(lookback),
    limit: p.get('limit') ?? defaultLimit,
  };
  clear(out, h('p', { class: 'muted' }, 'Searching…'));
  let found: Span[][];
  try {
    found = await api.traces(query, nav.signal);
  } catch (e) {
    if (!nav.signal.aborted) clear(out, errorBox(e));
    return;
  }
  if (nav.signal.aborted) return;
  showResults(out, p, endTs, found.map(buildTrace));
}

// showResults draws the result list: a head with the count and the pinned
// time, the scatter plot and a row per trace (with TraceQL, how many spans
// matched and a link that highlights them).
function showResults(out: HTMLElement, p: URLSearchParams, endTs: number, traces: Trace[],
  matchOf: (id: string) => Matched | undefined = () => undefined) {
  const pinned = p.get('range') !== 'custom' && p.get('endTs')
    ? h('span', null, ` · up to ${formatTime(endTs * 1000)} `, h('a', { href: `/?${withParams(p, { endTs: String(Date.now()) })}`, 'data-link': true, class: 'refresh' }, 'search up to now')) : null;
  if (traces.length === 0) {
    clear(out, h('div', { class: 'empty' }, h('strong', null, 'No traces match.'), ' Widen the time range, or remove a filter.', pinned));
    return;
  }
  const sort = p.get('sort') ?? 'newest';
  traces.sort((a, b) => sort === 'longest' ? b.duration - a.duration : sort === 'shortest' ? a.duration - b.duration : b.start - a.start);
  const color = palette(traces.flatMap((t) => t.services.map(([n]) => n)));
  const picked = new Set<string>();
  const compare = h('a', { class: 'button compare-picked', href: '/compare', 'data-link': true, 'aria-disabled': 'true' }, 'Compare 2 selected');
  const onPick = (id: string, on: boolean) => {
    if (on) picked.add(id); else picked.delete(id);
    const ids = [...picked];
    compare.setAttribute('aria-disabled', String(ids.length !== 2));
    compare.setAttribute('href', ids.length === 2 ? `/compare?a=${ids[0]}&b=${ids[1]}` : '/compare');
  };
  const slowest = Math.max(1, ...traces.map((t) => t.duration));
  const now = Date.now();
  clear(out,
    h('div', { class: 'results-head' }, h('span', { class: 'muted' }, `${traces.length} trace${traces.length === 1 ? '' : 's'}`, pinned), compare),
    scatter(traces),
    h('ol', { class: 'results' }, ...traces.map((t) => resultRow(t, slowest, now, color, onPick, matchOf(t.traceId)))));
}

// scatter plots each result by start time (x, over the results' time
// span, as Jaeger's does, in % of the width so dots stay round) and duration (y, px); errors in red;
// size by span count; a click opens the trace.
function scatter(traces: Trace[]): SVGElement {
  const starts = traces.map((t) => t.start / 1000);
  const pad = Math.max(1000, (Math.max(...starts) - Math.min(...starts)) * 0.02);
  const fromMs = Math.min(...starts) - pad, toMs = Math.max(...starts) + pad;
  const H = 140, top = 10, bottom = 20;
  const maxDur = Math.max(1, ...traces.map((t) => t.duration));
  const x = (us: number) => `${Math.max(2, Math.min(98, 2 + ((us / 1000 - fromMs) / Math.max(1, toMs - fromMs)) * 96))}%`;
  const y = (d: number) => H - bottom - (d / maxDur) * (H - bottom - top);
  const maxSpans = Math.max(1, ...traces.map((t) => t.spans.length));
  const time = (ms: number) => new Date(ms).toLocaleTimeString(undefined, { hour12: false });
  return s('svg', { class: 'scatter', height: H, role: 'img', 'aria-label': 'durations of the results over time' },
    s('line', { x1: '2%', y1: H - bottom, x2: '98%', y2: H - bottom, class: 'axis' }),
    s('text', { x: '2%', y: H - 5, class: 'axis-label' }, time(fromMs)),
    s('text', { x: '98%', y: H - 5, class: 'axis-label', 'text-anchor': 'end' }, time(toMs)),
    s('text', { x: 4, y: 12, class: 'axis-label' }, formatDuration(maxDur)),
    ...traces.map((t) => s('a', { href: `/traces/${t.traceId}`, 'data-link': true, class: 'point', 'data-trace-id': t.traceId },
      s('circle', { cx: x(t.start), cy: y(t.duration), r: 3 + 5 * Math.sqrt(t.spans.length / maxSpans),
        fill: t.error ? ERROR_COLOR : '#3a6df0', 'fill-opacity': 0.6 },
      s('title', null, `${t.rootService}: ${t.rootName} · ${formatDuration(t.duration)} · ${t.spans.length} spans`)))));
}

function resultRow(t: Trace, slowest: number, now: number, color: (s: string) => string, onPick: (id: string, on: boolean) => void,
  match?: Matched): HTMLElement {
  const pct = Math.max(0.5, (100 * t.duration) / slowest);
  const total = t.spans.length;
  const pick = h('input', { type: 'checkbox', class: 'pick', 'aria-label': `compare ${t.traceId}`, onchange: (ev: Event) => onPick(t.traceId, (ev.target as HTMLInputElement).checked) });
  return h('li', { class: `result${t.error ? ' has-error' : ''}`, 'data-trace-id': t.traceId },
    pick,
    h('a', { href: `/traces/${t.traceId}${match?.spans.length ? `?matched=${match.spans.join(',')}` : ''}`, 'data-link': true, class: 'result-link' },
      h('div', { class: 'result-head' },
        t.error ? h('span', { class: 'error-mark', title: 'has errors' }, '!') : null,
        h('span', { class: 'root-service' }, t.rootService), ': ', h('span', { class: 'root-name' }, t.rootName),
        h('code', { class: 'result-id' }, t.traceId),
        match ? h('span', { class: 'chip matched', title: 'spans the TraceQL query matched' }, `${match.count} matched`) : null,
        h('span', { class: 'result-meta' }, `${total} span${total === 1 ? '' : 's'} · `,
          h('time', { datetime: new Date(t.start / 1000).toISOString(), title: formatTime(t.start) }, relativeTime(t.start, now)))),
      h('div', { class: 'result-bars' },
        h('div', { class: 'duration-bar-track' },
          h('div', { class: 'duration-bar', style: `width:${pct}%;background:${t.error ? 'var(--error)' : 'var(--accent)'}` }),
          h('span', { class: 'duration-label' }, formatDuration(t.duration))),
        h('div', { class: 'service-share', title: 'spans per service' }, ...t.services.map(([name, n]) =>
          h('span', { style: `flex:${n};background:${color(name)}`, title: `${name}: ${n} of ${total} spans` }))),
        h('div', { class: 'service-chips' }, ...t.services.map(([name, n]) =>
          h('span', { class: 'chip', style: `border-color:${color(name)}` }, `${name} ×${n}`))))));
}

function firstSpanHelp(): HTMLElement {
  const origin = location.origin;
  const now = Date.now() * 1000;
  const example = `curl -X POST ${origin}/api/v2/spans -H 'Content-Type: application/json' -d '[{"traceId":"5af7183fb1d4cf5f","id":"5af7183fb1d4cf5f","name":"hello","timestamp":${now},"duration":1000,"localEndpoint":{"serviceName":"my-service"}}]'`;
  return h('div', { class: 'empty' },
    h('h1', null, 'No services yet'),
    h('p', null, 'zipq has not stored any span. Point a Zipkin client at it, or send one by hand:'),
    h('pre', null, example),
    h('p', null, 'Clients publishing to RabbitMQ use the queue ', h('code', null, 'zipkin'), ' (zipkin-go: reporter/amqp; Brave: RabbitMQSender). Spans appear here once their batch is stored, within a second.'));
}
