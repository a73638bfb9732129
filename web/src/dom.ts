// Every element is built here, and every piece of text goes in through
// textContent or setAttribute: span-provided strings can never become
// markup. There is no innerHTML anywhere in the UI.

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

export function errorBox(err: unknown, hint?: string): HTMLElement {
  const msg = err instanceof Error ? err.message : String(err);
  return h('div', { class: 'error-box', role: 'alert' }, h('strong', null, 'Something went wrong: '), msg, hint ? h('p', null, hint) : null);
}
