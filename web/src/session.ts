// The caller's token for this browser tab: asked for once when zipq
// answers 401, kept in sessionStorage (gone when the tab closes, never
// sent to another origin) and sent as a bearer token with every call.
// Pure: the storage is passed in, so the rules are unit-tested.

export interface TokenStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const KEY = 'zipq-token';

export function savedToken(store: TokenStore): string {
  return store.getItem(KEY) ?? '';
}

// saveToken keeps a trimmed token; an empty one forgets it. It returns an
// error message for text no server would accept as a bearer token (RFC
// 6750's characters), so a pasted line break or quote is caught here.
export function saveToken(store: TokenStore, token: string): string | null {
  const t = token.trim();
  if (t === '') { store.removeItem(KEY); return null; }
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(t)) return 'A token is letters, digits and -._~+/ only (check for spaces or quotes pasted with it).';
  store.setItem(KEY, t);
  return null;
}

export function forgetToken(store: TokenStore) { store.removeItem(KEY); }

// withToken is init with the bearer token added, unless it carries its own
// Authorization (the pipeline page's admin token) or there is none.
export function withToken(init: RequestInit, token: string): RequestInit {
  if (!token) return init;
  const headers = new Headers(init.headers);
  if (!headers.has('Authorization')) headers.set('Authorization', `Bearer ${token}`);
  return { ...init, headers };
}

// authProblem says what a 401 or 403 asks of the person: to give a token,
// a valid one, or one with more rights. null for any other status.
export function authProblem(status: number, hadToken: boolean, message: string): { title: string; detail: string } | null {
  if (status === 401) {
    return hadToken
      ? { title: 'This token was refused', detail: `zipq said: ${message}. Enter a valid token (it may have expired or been removed).` }
      : { title: 'zipq needs a token', detail: 'This zipq requires a bearer token to read traces. Enter the one your operator gave you; it is kept for this browser tab only.' };
  }
  if (status === 403) {
    return { title: 'This token may not do that', detail: `zipq said: ${message}. Enter a token with the scope it names, or go back.` };
  }
  return null;
}
