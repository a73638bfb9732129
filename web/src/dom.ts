// Every element is built here, and every piece of text goes in through
// textContent or setAttribute: span-provided strings can never become
// markup. There is no innerHTML anywhere in the UI.

import { navigate } from './router';
import { authProblem, saveTenant, savedTenant, saveToken } from './session';

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined | null>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

export function s(tag: string, attrs?: Attrs | null, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG, tag) as SVGElement;
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el: Element, attrs?: Attrs | null) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
}

function append(el: Element, children: Child[]) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element, ...children: Child[]) {
  el.replaceChildren();
  append(el, children);
}

// formatDuration renders microseconds as Zipkin's UI does: µs, ms or s.
export function formatDuration(us: number | undefined): string {
  if (us === undefined || us === null || Number.isNaN(us)) return '';
  const abs = Math.abs(us);
  if (abs < 1000) return `${us}μs`;
  if (abs < 1_000_000) return `${+(us / 1000).toFixed(3)}ms`;
  return `${+(us / 1_000_000).toFixed(3)}s`;
}

export function formatTime(us: number | undefined): string {
  if (!us) return '';
  const d = new Date(us / 1000);
  return d.toLocaleString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

// errorBox shows what went wrong; a call refused for want of a token (or
// of a strong enough one) asks for a token instead, wherever it happened.
export function errorBox(err: unknown, hint?: string): HTMLElement {
  const form = tokenForm(err);
  if (form) return form;
  const msg = err instanceof Error ? err.message : String(err);
  return h('div', { class: 'error-box', role: 'alert' }, h('strong', null, 'Something went wrong: '), msg, hint ? h('p', null, hint) : null);
}

// tokenForm asks for a bearer token after a 401 or 403 from zipq (an
// ApiError: status, serverText, hadToken), keeps it for the tab and
// renders the page again with it. null for any other error.
function tokenForm(err: unknown): HTMLElement | null {
  const e = err as { status?: unknown; hadToken?: unknown; serverText?: unknown } | null;
  if (!e || typeof e.status !== 'number' || typeof e.serverText !== 'string') return null;
  const problem = authProblem(e.status, e.hadToken === true, e.serverText);
  if (!problem) return null;
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', 'aria-label': 'token', placeholder: 'token', size: 40 });
  const tenant = h('input', { name: 'tenant', autocomplete: 'off', 'aria-label': 'tenant', placeholder: 'tenant (optional)', size: 16, value: savedTenant(sessionStorage) });
  const note = h('p', { class: 'form-error', role: 'alert' });
  return h('div', { class: 'signin' }, h('h2', null, problem.title), h('p', null, problem.detail),
    h('form', { onsubmit: (ev: Event) => {
      ev.preventDefault();
      const bad = saveToken(sessionStorage, input.value) ?? saveTenant(sessionStorage, tenant.value);
      if (bad) { note.textContent = bad; return; }
      navigate(location.pathname + location.search, { replace: true });
    } }, input, ' ', tenant, ' ', h('button', { type: 'submit' }, 'Use token')),
    h('p', { class: 'muted' }, 'The tenant is for a token that may read several (X-Scope-OrgID); leave it empty for your token\'s own, or the default one.'), note);
}
