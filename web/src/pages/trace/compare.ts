import { api, type Span } from '../../api';
import { errorBox, formatDuration, h } from '../../dom';
import { buildTrace, type Trace } from '../../model';
import { diffTraces, type DiffNode } from '../../analyze';
import { navigate, type Nav } from '../../router';

// Compare two traces (as Jaeger's compare): spans matched by their
// service+name path from the root; what B adds, what it misses, and
// which paths got slower, faster, or run more or fewer times.
export async function comparePage(nav: Nav) {
  const a = nav.params.get('a') ?? '', b = nav.params.get('b') ?? '';
  const input = (name: string, value: string) => h('input', { name, value, placeholder: `trace ID ${name.toUpperCase()}`, 'aria-label': `trace ${name}`, size: 34 });
  const ia = input('a', a), ib = input('b', b);
  const form = h('form', { class: 'compare-form', onsubmit: (ev: Event) => {
    ev.preventDefault();
    navigate(`/compare?a=${encodeURIComponent(ia.value.trim())}&b=${encodeURIComponent(ib.value.trim())}`);
  } }, ia, ' vs ', ib, ' ', h('button', { type: 'submit', class: 'primary' }, 'Compare'));
  const head = [h('h1', null, 'Compare two traces'), form];
  if (!a || !b) {
    nav.show(...head, h('p', { class: 'muted' }, 'Paste two trace IDs, or tick two results on the search page and press "Compare 2 selected".'));
    return;
  }
  nav.show(...head, h('p', { class: 'muted' }, 'Loading both traces…'));
  let spans: [Span[] | null, Span[] | null];
  try {
    spans = await Promise.all([api.trace(a, nav.signal), api.trace(b, nav.signal)]);
  } catch (e) {
    nav.show(...head, errorBox(e));
    return;
  }
  const missing = [a, b].filter((_, i) => !spans[i]?.length);
  if (missing.length) {
    nav.show(...head, h('div', { class: 'empty' }, `Not found: ${missing.join(', ')}.`));
    return;
  }
  const ta = buildTrace(spans[0]!), tb = buildTrace(spans[1]!);
  const diff = diffTraces(ta, tb);
  const counts = new Map<string, number>();
  for (const n of diff) counts.set(n.status, (counts.get(n.status) ?? 0) + 1);
  const summary = (t: Trace, label: string) => h('div', { class: 'card' },
    h('div', { class: 'card-label' }, `trace ${label}`), h('a', { href: `/traces/${t.traceId}`, 'data-link': true }, h('code', null, t.traceId)),
    h('div', null, `${t.rootService}: ${t.rootName}`), h('div', { class: 'card-value' }, formatDuration(t.duration)),
    h('div', { class: 'muted' }, `${t.spans.length} spans, ${t.services.length} services`));
  nav.show(...head,
    h('div', { class: 'cards compare-cards' }, summary(ta, 'A'), summary(tb, 'B')),
    h('p', { class: 'diff-summary' }, ...['added', 'missing', 'slower', 'faster', 'more', 'fewer', 'same'].map((st) =>
      h('span', { class: `diff-badge diff-${st}` }, `${st} ${counts.get(st) ?? 0}`))),
    diffTable(diff));
}

function diffTable(diff: DiffNode[]): HTMLElement {
  const delta = (n: DiffNode) => (n.aAvg !== undefined && n.bAvg !== undefined ? `${n.bAvg >= n.aAvg ? '+' : '−'}${formatDuration(Math.round(Math.abs(n.bAvg - n.aAvg)))}` : '');
  return h('table', { class: 'diff' },
    h('thead', null, h('tr', null, ...['span (service: name, by path from the root)', 'A count', 'A avg', 'B count', 'B avg', 'Δ avg', ''].map((x) => h('th', null, x)))),
    h('tbody', null, ...diff.map((n) => h('tr', { class: `diff-${n.status}`, 'data-path': n.path, 'data-status': n.status },
      h('td', { style: `padding-left:${8 + n.depth * 16}px` }, h('strong', null, n.service), `: ${n.name}`),
      h('td', { class: 'num' }, n.a), h('td', { class: 'num' }, formatDuration(n.aAvg === undefined ? undefined : Math.round(n.aAvg))),
      h('td', { class: 'num' }, n.b), h('td', { class: 'num' }, formatDuration(n.bAvg === undefined ? undefined : Math.round(n.bAvg))),
      h('td', { class: 'num' }, delta(n)), h('td', null, h('span', { class: `diff-badge diff-${n.status}` }, n.status),
        n.aErrors !== n.bErrors ? h('span', { class: 'error-text diff-errors', title: 'occurrences with an error tag' }, ` errors ${n.aErrors} → ${n.bErrors}`) : null)))));
}
