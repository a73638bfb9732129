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
const TENANT = 'zipq-tenant';

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

export function forgetToken(store: TokenStore) { store.removeItem(KEY); store.removeItem(TENANT); }

// The tenant this tab reads (X-Scope-OrgID), for a token not bound to one;
// '' is the default tenant (or the token's own).
export function savedTenant(store: TokenStore): string {
  return store.getItem(TENANT) ?? '';
}

// saveTenant keeps a tenant name as Tempo accepts them (letters, digits
// and !-_.*'(), at most 150), or forgets it when empty; it returns an
// error message for any other name.
export function saveTenant(store: TokenStore, tenant: string): string | null {
  const t = tenant.trim();
  if (t === '') { store.removeItem(TENANT); return null; }
  if (!/^[A-Za-z0-9!\-_.*'()]{1,150}$/.test(t) || t === '.' || t === '..') return 'A tenant is letters, digits and !-_.*\'() only, at most 150.';
  store.setItem(TENANT, t);
  return null;
}

// withToken is init with the bearer token added, unless it carries its own
// Authorization (the pipeline page's admin token) or there is none, and
// the tenant named (X-Scope-OrgID) when one is chosen.
export function withToken(init: RequestInit, token: string, tenant = ''): RequestInit {
  if (!token && !tenant) return init;
  const headers = new Headers(init.headers);
  if (token && !headers.has('Authorization')) headers.set('Authorization', `Bearer ${token}`);
  if (tenant) headers.set('X-Scope-OrgID', tenant);
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
