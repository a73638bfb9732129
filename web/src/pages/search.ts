import { api, type Span } from '../api';
import { clear, errorBox, formatDuration, formatTime, h, serviceColor } from '../dom';
import { buildTrace, type Trace } from '../model';
import { navigate } from '../router';
import { CUSTOM, RANGES, rangeOf, windowOf } from '../timerange';


// The search page: a form whose state lives in the URL (deep links and the
// back button work), and one row per matching trace.
export async function searchPage(root: HTMLElement, params: URLSearchParams) {
  const services = await api.services().catch((e) => e as Error);
  if (services instanceof Error) {
    clear(root, errorBox(services, 'Is zipq connected to PostgreSQL? See /health.'));
    return;
  }
  if (services.length === 0) {
    clear(root, firstSpanHelp());
    return;
  }
  const field = (label: string, input: HTMLElement) => h('label', { class: 'field' }, h('span', null, label), input);
  const select = (name: string, options: string[], value: string, anyLabel = 'any') =>
    h('select', { name, 'aria-label': name }, h('option', { value: '' }, anyLabel),
      ...options.map((o) => h('option', { value: o, selected: o === value }, o)));

  const svcSel = select('serviceName', services, params.get('serviceName') ?? '');
  const nameSel = select('spanName', [], '');
  const remoteSel = select('remoteServiceName', [], '');
  const fillNames = async (keep?: boolean) => {
    const svc = svcSel.value;
    const [names, remotes] = svc ? await Promise.all([api.spanNames(svc), api.remoteServices(svc)]).catch(() => [[], []]) : [[], []];
    const wantName = keep ? params.get('spanName') ?? '' : '';
    const wantRemote = keep ? params.get('remoteServiceName') ?? '' : '';
    clear(nameSel, h('option', { value: '' }, 'any'), ...names.map((n) => h('option', { value: n, selected: n === wantName }, n)));
    clear(remoteSel, h('option', { value: '' }, 'any'), ...remotes.map((n) => h('option', { value: n, selected: n === wantRemote }, n)));
  };
  svcSel.addEventListener('change', () => fillNames(false));
  await fillNames(true);

  const tagList = h('datalist', { id: 'tag-suggestions' });
  const tagInput = h('input', { name: 'annotationQuery', list: 'tag-suggestions', placeholder: 'error and http.method=GET', value: params.get('annotationQuery') ?? '', size: 32 });
  api.autocompleteKeys().then((keys) => clear(tagList, ...keys.map((k) => h('option', { value: `${k}=` })))).catch(() => {});
  tagInput.addEventListener('input', async () => {
    const last = tagInput.value.split(/\s+and\s+/i).pop() ?? '';
    const [key, partial] = last.split('=', 2);
    if (partial === undefined || !key) return;
    const values = await api.autocompleteValues(key.trim()).catch(() => [] as string[]);
    const prefix = tagInput.value.slice(0, tagInput.value.length - last.length);
    clear(tagList, ...values.map((v) => h('option', { value: `${prefix}${key.trim()}=${v}` })));
  });

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

  const range = rangeOf(params, '15m').key;
  const rangeSel = h('select', { name: 'range', 'aria-label': 'time range' },
    ...[...RANGES, CUSTOM].map((r) => h('option', { value: r.key, selected: r.key === range }, r.label)));
  const toLocal = (ms: number) => new Date(ms - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const { endTs: endMs, lookback } = windowOf(params, '15m');
  const startMs = endMs - lookback;
  const fromInput = h('input', { type: 'datetime-local', name: 'from', value: toLocal(startMs), 'aria-label': 'from' });
  const toInput = h('input', { type: 'datetime-local', name: 'to', value: toLocal(endMs), 'aria-label': 'to' });
  const custom = h('span', { class: 'custom-range', hidden: range !== 'custom' }, fromInput, ' – ', toInput);
  rangeSel.addEventListener('change', () => { custom.hidden = rangeSel.value !== 'custom'; });

  const limit = h('input', { type: 'number', name: 'limit', min: 1, max: 1000, value: params.get('limit') ?? '10', size: 4, 'aria-label': 'limit' });
  const sortSel = h('select', { name: 'sort', 'aria-label': 'sort' },
    ...[['newest', 'newest first'], ['longest', 'longest first'], ['shortest', 'shortest first']].map(([v, l]) => h('option', { value: v, selected: v === (params.get('sort') ?? 'newest') }, l)));

  const results = h('section', { id: 'results', 'aria-live': 'polite' });
  const form = h('form', { class: 'search', role: 'search' },
    field('Service', svcSel), field('Span name', nameSel), field('Remote service', remoteSel),
    field('Tags / annotations', h('span', null, tagInput, tagList)),
    field('Min duration', h('span', null, minDur.input, minDur.units)),
    field('Max duration', h('span', null, maxDur.input, maxDur.units)),
    field('Time', h('span', null, rangeSel, custom)), field('Limit', limit), field('Sort', sortSel),
    h('button', { type: 'submit', class: 'primary' }, 'Find traces'));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    const set = (k: string, v: string | number | undefined) => { if (v !== undefined && v !== '') q.set(k, String(v)); };
    set('serviceName', svcSel.value); set('spanName', nameSel.value); set('remoteServiceName', remoteSel.value);
    set('annotationQuery', tagInput.value.trim()); set('minDuration', minDur.us()); set('maxDuration', maxDur.us());
    set('range', rangeSel.value);
    if (rangeSel.value === 'custom') {
      const from = new Date(fromInput.value).getTime(), to = new Date(toInput.value).getTime();
      set('endTs', to); set('lookback', Math.max(1, to - from));
    }
    set('limit', limit.value); set('sort', sortSel.value);
    navigate(`/?${q}`);
  });
  clear(root, h('h1', null, 'Find a trace'), form, results);
  if ([...params.keys()].length) await runSearch(results, params);
}

async function runSearch(out: HTMLElement, p: URLSearchParams) {
  const { endTs, lookback } = windowOf(p, '15m');
  const query: Record<string, string | undefined> = {
    serviceName: p.get('serviceName') ?? undefined, spanName: p.get('spanName') ?? undefined,
    remoteServiceName: p.get('remoteServiceName') ?? undefined, annotationQuery: p.get('annotationQuery') ?? undefined,
    minDuration: p.get('minDuration') ?? undefined, maxDuration: p.get('maxDuration') ?? undefined,
    endTs: String(endTs), lookback: String(lookback),
    limit: p.get('limit') ?? '10',
  };
  clear(out, h('p', { class: 'muted' }, 'Searching…'));
  let found: Span[][];
  try {
    found = await api.traces(query);
  } catch (e) {
    clear(out, errorBox(e, 'Check the search fields: durations are numbers, the limit is 1 to 1000.'));
    return;
  }
  if (found.length === 0) {
    clear(out, h('div', { class: 'empty' }, h('strong', null, 'No traces match.'), ' Widen the time range, or remove a filter.'));
    return;
  }
  const traces = found.map(buildTrace);
  const sort = p.get('sort') ?? 'newest';
  traces.sort((a, b) => sort === 'longest' ? b.duration - a.duration : sort === 'shortest' ? a.duration - b.duration : b.start - a.start);
  const slowest = Math.max(1, ...traces.map((t) => t.duration));
  clear(out, h('p', { class: 'muted' }, `${traces.length} trace${traces.length === 1 ? '' : 's'}`),
    h('ol', { class: 'results' }, ...traces.map((t) => resultRow(t, slowest))));
}

function resultRow(t: Trace, slowest: number): HTMLElement {
  const pct = Math.max(0.5, (100 * t.duration) / slowest);
  return h('li', { class: `result${t.error ? ' has-error' : ''}`, 'data-trace-id': t.traceId },
    h('a', { href: `/traces/${t.traceId}`, 'data-link': true, class: 'result-link' },
      h('div', { class: 'result-head' },
        t.error ? h('span', { class: 'error-mark', title: 'has errors' }, '!') : null,
        h('span', { class: 'root-service' }, t.rootService), ': ', h('span', { class: 'root-name' }, t.rootName),
        h('span', { class: 'result-meta' }, `${t.spans.length} spans · ${formatTime(t.start)}`)),
      h('div', { class: 'duration-bar-track' },
        h('div', { class: 'duration-bar', style: `width:${pct}%;background:${t.error ? 'var(--error)' : 'var(--accent)'}` }),
        h('span', { class: 'duration-label' }, formatDuration(t.duration))),
      h('div', { class: 'service-chips' }, ...t.services.map(([name, n]) =>
        h('span', { class: 'chip', style: `border-color:${serviceColor(name)}` }, `${name} ×${n}`)))));
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
