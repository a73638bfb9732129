// A small History-API router: every page has a real URL, links are
// intercepted, and the back button re-renders the previous page.

type Render = () => void | Promise<void>;
let render: Render = () => {};

export function startRouter(r: Render) {
  render = r;
  window.addEventListener('popstate', () => void render());
  document.addEventListener('click', (ev) => {
    const a = (ev.target as Element).closest?.('a[data-link]') as HTMLAnchorElement | null;
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    ev.preventDefault();
    navigate(a.getAttribute('href') ?? '/');
  });
  void render();
}

export function navigate(url: string) {
  if (url !== location.pathname + location.search) history.pushState(null, '', url);
  void render();
}

// Pages register what must stop when the user navigates away (timers,
// listeners); the router runs it before rendering the next page.
let leaving: (() => void)[] = [];

export function onLeave(fn: () => void) {
  leaving.push(fn);
}

export function leave() {
  const fns = leaving;
  leaving = [];
  for (const fn of fns) fn();
}
