import { api, type ParkedDetail, type Pipeline } from '../api';
import { clear, errorBox, h } from '../dom';
import type { Nav } from '../router';
import { budgetText, bytesText, tenantBudgetText } from '../usage';

// The pipeline page shows what tracing UIs do not: the queue in front of
// the store, how fast it drains, and what was parked and why — with a
// replay action when an admin token is configured.
export async function pipelinePage(nav: Nav) {
  const stats = h('section', { class: 'cards', 'aria-live': 'polite' });
  const parked = h('section', { class: 'parked' });
  const replayOut = h('p', { class: 'replay-result', role: 'status' });
  const timer = setInterval(() => void refreshStats(), 3000);
  nav.onLeave(() => clearInterval(timer));
  nav.show(h('h1', null, 'Pipeline'), stats, h('h2', null, 'Parked messages'), parked);

  const refreshStats = async () => {
    try {
      renderStats(stats, await api.pipeline(false, nav.signal));
    } catch (e) {
      if (!nav.signal.aborted) clear(stats, errorBox(e, 'Is RabbitMQ reachable? See /health.'));
    }
  };
  const refreshParked = async () => {
    let p: Pipeline;
    try {
      p = await api.pipeline(true, nav.signal);
    } catch (e) {
      if (!nav.signal.aborted) clear(parked, errorBox(e));
      return;
    }
    renderStats(stats, p);
    renderParked(parked, p, replayOut, refreshParked);
  };
  await refreshParked();
}

const num = (v: number | null | undefined, digits = 0) => (v === null || v === undefined ? 'n/a' : v.toLocaleString(undefined, { maximumFractionDigits: digits }));

function eta(seconds: number | null): string {
  if (seconds === null) return 'not draining';
  if (seconds < 90) return `${Math.ceil(seconds)} s`;
  if (seconds < 5400) return `${Math.ceil(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function renderStats(el: HTMLElement, p: Pipeline) {
  const q = p.pipeline;
  if (!q) {
    clear(el, errorBox(p.error ?? 'pipeline unavailable', 'Is RabbitMQ reachable? See /health.'));
    return;
  }
  const card = (label: string, value: string, note?: string, id?: string) =>
    h('div', { class: 'card', 'data-stat': id ?? label }, h('div', { class: 'card-value' }, value), h('div', { class: 'card-label' }, label), note ? h('div', { class: 'muted' }, note) : null);
  clear(el,
    q.warning ? h('p', { class: 'queue-warning', role: 'alert' }, h('strong', null, 'Not durable: '), q.warning) : null,
    card('queue type', q.queueType ?? 'n/a', q.queueType === 'quorum' ? 'replicated, persists every message' : `type of ${q.queue}`, 'queue-type'),
    card('queue depth', num(q.messages), `messages in ${q.queue}`, 'depth'),
    card('consumers', num(q.consumers), 'collectors reading the queue', 'consumers'),
    card('ingest', q.receivedPerSecond === null ? 'n/a' : `${num(q.receivedPerSecond)} spans/s`, 'decoded by this process', 'ingest'),
    card('stored', q.storedPerSecond === null ? 'n/a' : `${num(q.storedPerSecond)} spans/s`, 'committed by this process', 'stored'),
    card('drain', q.drainPerSecond === null ? 'measuring…' : `${num(q.drainPerSecond, 1)} msg/s`, 'queue shrink rate', 'drain'),
    card('time to drain', q.messages === 0 ? 'empty' : eta(q.drainSeconds), 'at the current rate', 'eta'),
    card('parked', num(q.parked), `in ${q.parkedQueue}`, 'parked'),
    card('tenant', q.tenant ?? 'single-tenant', limitsText(q), 'tenant'),
    q.storageBytes === undefined ? null : card('disk', bytesText(q.storageBytes), budgetText(q), 'disk'),
    q.tenantBytes === undefined ? null : card('tenant disk', bytesText(q.tenantBytes), tenantBudgetText(q), 'tenant-disk'));
}

// limitsText is the tenant's ingest limits and retention, as set in
// ZIPQ_TENANTS_FILE.
export function limitsText(q: { limitSpansPerSecond?: number; limitBytesPerSecond?: number; retentionHours?: number; maxTraceSpans?: number }): string {
  const parts = [
    q.limitSpansPerSecond ? `${num(q.limitSpansPerSecond)} spans/s` : '',
    q.limitBytesPerSecond ? `${num(q.limitBytesPerSecond)} bytes/s` : '',
    q.retentionHours ? `kept ${num(q.retentionHours)} h` : '',
    q.maxTraceSpans ? `${num(q.maxTraceSpans)} spans a trace` : '',
  ].filter(Boolean);
  return parts.length ? `limits: ${parts.join(', ')}` : 'no ingest limits';
}

function renderParked(el: HTMLElement, p: Pipeline, out: HTMLElement, refresh: () => Promise<void>) {
  const q = p.pipeline;
  if (!q) return;
  const sample = q.parkedSample ?? [];
  if (q.parked === 0) {
    clear(el, h('p', { class: 'empty' }, 'Nothing is parked: every message received so far was stored.'), out);
    return;
  }
  const reasons = new Map<string, number>();
  for (const m of sample) reasons.set(m.reason, (reasons.get(m.reason) ?? 0) + 1);
  const token = h('input', { type: 'password', name: 'token', placeholder: 'admin token', 'aria-label': 'admin token', autocomplete: 'off', value: sessionStorage.getItem('zipq-admin-token') ?? '' });
  const discard = async (m: ParkedDetail, row: HTMLElement) => {
    sessionStorage.setItem('zipq-admin-token', token.value);
    try {
      await api.discard(token.value, m.id);
      row.classList.add('is-discarded');
      clear(out, `Discarded the ${m.reason} message ${m.id} (${m.bytes} bytes).`);
    } catch (e) {
      clear(out, errorBox(e, 'The token is ZIPQ_ADMIN_TOKEN of the zipq process.'));
    }
  };
  const table = h('table', { class: 'parked-table' },
    h('thead', null, h('tr', null, h('th', null, 'reason'), h('th', null, 'error'), h('th', null, 'first bytes'), h('th', null, 'parked at'), h('th', null, 'bytes'), h('th', null, 'replays'),
      p.adminEnabled ? h('th', null, '') : null)),
    h('tbody', null, ...sample.map((m) => {
      const row = h('tr', { 'data-reason': m.reason, 'data-id': m.id },
        h('td', null, h('code', null, m.reason)), h('td', { class: 'parked-error' }, m.error ?? ''),
        h('td', { class: 'parked-head' }, h('pre', null, m.head + (m.bytes > m.head.length ? ' …' : ''))),
        h('td', null, m.parkedAt ?? ''), h('td', null, m.bytes), h('td', null, m.replays ?? 0));
      if (p.adminEnabled) {
        // Two clicks: the first arms the button, the second discards.
        const btn: HTMLButtonElement = h('button', { type: 'button', class: 'discard', title: 'delete this message for good: it can never be stored',
          onclick: () => {
            if (btn.dataset.armed) { btn.disabled = true; void discard(m, row); return; }
            btn.dataset.armed = '1';
            btn.textContent = 'Discard for good?';
          } }, 'Discard');
        row.append(h('td', null, btn));
      }
      return row;
    })));
  const byReason = h('p', null, `${q.parked} parked`, sample.length < q.parked ? ` (first ${sample.length} shown)` : '', ': ',
    ...[...reasons].map(([r, n], i) => h('span', null, i ? ', ' : '', h('code', null, r), ` ×${n}`)));
  let action: HTMLElement;
  if (p.adminEnabled) {
    const reason = h('select', { name: 'reason', 'aria-label': 'reason to replay' }, h('option', { value: '' }, 'every reason'),
      ...[...reasons.keys()].map((r) => h('option', { value: r }, r)));
    action = h('form', { class: 'replay', onsubmit: async (ev: Event) => {
      ev.preventDefault();
      sessionStorage.setItem('zipq-admin-token', token.value);
      clear(out, 'Replaying…');
      try {
        const n = await api.replay(token.value, reason.value);
        clear(out, `Replayed ${n} message${n === 1 ? '' : 's'} to ${q.queue}. Messages whose cause is not fixed are parked again.`);
        await refresh();
      } catch (e) {
        clear(out, errorBox(e, 'The token is ZIPQ_ADMIN_TOKEN of the zipq process.'));
      }
    } }, h('h3', null, 'Replay'), 'Fix the cause first (e.g. raise COLLECTOR_MAX_MESSAGE_BYTES), then ', token, ' ', reason, ' ',
    h('button', { type: 'submit', class: 'primary' }, 'Replay parked messages'));
  } else {
    action = h('p', { class: 'muted' }, 'Replay from here is off: start zipq with ZIPQ_ADMIN_TOKEN set, or run ', h('code', null, 'zipq replay [-reason R]'), '.');
  }
  clear(el, byReason, table, h('button', { type: 'button', onclick: () => void refresh() }, 'Refresh list'), action, out);
}
