// A small History-API router with one route table. Every navigation gets
// its own AbortSignal: starting the next one aborts the previous, which
// cancels its fetches and runs the cleanups it registered, and its
// `show` stops touching the page. So a slow page that finishes after the
// user left cannot overwrite the next one.

export interface Nav {
  path: string;
  params: URLSearchParams;
  match: RegExpExecArray;
  signal: AbortSignal;
  // show replaces the page's content, unless this navigation is over.
  show(...children: (Node | string | null | undefined | false)[]): void;
  // onLeave runs fn when the user navigates away (at once if they have).
  // Register before the first await.
  onLeave(fn: () => void): void;
}

export interface Route {
  pattern: RegExp;
  title: (m: RegExpExecArray) => string;
  page: (nav: Nav) => void | Promise<void>;
}

let routes: Route[] = [];
let root: HTMLElement;
let current: AbortController | null = null;
let before: (path: string) => void = () => {};
let failed: (nav: Nav, err: unknown) => void = () => {};

export function startRouter(el: HTMLElement, table: Route[], hooks: { before?: (path: string) => void; failed?: (nav: Nav, err: unknown) => void } = {}) {
  root = el;
  routes = table;
  before = hooks.before ?? before;
  failed = hooks.failed ?? failed;
  window.addEventListener('popstate', () => void run());
  document.addEventListener('click', (ev) => {
    const a = (ev.target as Element).closest?.('a[data-link]') as HTMLAnchorElement | null;
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    ev.preventDefault();
    navigate(a.getAttribute('href') ?? '/');
  });
  void run();
}

// navigate pushes url and renders it; replace swaps the history entry
// (state changes within a page, e.g. the trace's find box).
export function navigate(url: string, opts: { replace?: boolean; render?: boolean } = {}) {
  if (url !== location.pathname + location.search) {
    if (opts.replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  }
  if (opts.render !== false) void run();
}

// withParams is params with over applied (undefined removes a key), as a
// query string: links that change one part of a page's URL state.
export function withParams(params: URLSearchParams, over: Record<string, string | undefined>): string {
  const q = new URLSearchParams(params);
  for (const [k, v] of Object.entries(over)) if (v === undefined) q.delete(k); else q.set(k, v);
  return q.toString();
}

export const isAbort = (e: unknown) => e instanceof DOMException && e.name === 'AbortError';

async function run() {
  current?.abort();
  const ctl = new AbortController();
  current = ctl;
  // body[data-nav] says whether the current page is still rendering
  // ("loading") or done ("ready"): browser tests wait for it before they
  // act, so a click cannot land on a form the page is about to replace.
  document.body.dataset.nav = 'loading';
  const path = location.pathname;
  before(path);
  const found = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m) ?? null;
  const m = found?.m ?? (/.*/.exec(path) as RegExpExecArray);
  const nav: Nav = {
    path, params: new URLSearchParams(location.search), match: m, signal: ctl.signal,
    show: (...children) => {
      if (ctl.signal.aborted) return;
      root.replaceChildren(...children.filter((c): c is Node | string => !!c));
    },
    onLeave: (fn) => {
      if (ctl.signal.aborted) fn(); else ctl.signal.addEventListener('abort', fn, { once: true });
    },
  };
  if (!found) {
    document.title = 'zipq · not found';
    failed(nav, null);
  } else {
    document.title = found.r.title(m);
    try {
      await found.r.page(nav);
    } catch (e) {
      if (!ctl.signal.aborted && !isAbort(e)) failed(nav, e);
    }
  }
  if (!ctl.signal.aborted) document.body.dataset.nav = 'ready';
}
