// Unit tests of the session token rules (session.ts).
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { savedToken, saveToken, forgetToken, withToken, authProblem, savedTenant, saveTenant } from '../.test-build/session.js';

const memory = () => {
  const m = new Map();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k), m };
};

test('a token is kept trimmed, an empty one forgotten, a malformed one refused and not kept', () => {
  const s = memory();
  assert.equal(savedToken(s), '');
  assert.equal(saveToken(s, '  zq_abc-DEF.1~+/==\n'), null);
  assert.equal(savedToken(s), 'zq_abc-DEF.1~+/==');
  assert.match(saveToken(s, '"zq_abc"'), /letters, digits/);
  assert.match(saveToken(s, 'zq ab'), /letters, digits/);
  assert.equal(savedToken(s), 'zq_abc-DEF.1~+/==', 'a refused token leaves the old one');
  assert.equal(saveToken(s, '   '), null);
  assert.equal(savedToken(s), '');
  saveToken(s, 'x');
  forgetToken(s);
  assert.equal(s.m.size, 0);
});

test('withToken adds a bearer header without replacing one the call carries', () => {
  assert.deepEqual(withToken({ method: 'GET' }, ''), { method: 'GET' });
  const h = new Headers(withToken({ headers: { Accept: 'application/json' } }, 'zq_t').headers);
  assert.equal(h.get('Authorization'), 'Bearer zq_t');
  assert.equal(h.get('Accept'), 'application/json');
  const own = new Headers(withToken({ headers: { Authorization: 'Bearer admin' } }, 'zq_t').headers);
  assert.equal(own.get('Authorization'), 'Bearer admin');
});

test('a tenant is kept as Tempo accepts it, forgotten when empty or with the token, and sent as X-Scope-OrgID', () => {
  const s = memory();
  assert.equal(saveTenant(s, ' team-a '), null);
  assert.equal(savedTenant(s), 'team-a');
  assert.match(saveTenant(s, 'team/a'), /letters, digits/);
  assert.match(saveTenant(s, '..'), /letters, digits/);
  assert.match(saveTenant(s, 'x'.repeat(151)), /letters, digits/);
  assert.equal(savedTenant(s), 'team-a', 'a refused tenant leaves the old one');
  const h = new Headers(withToken({}, '', savedTenant(s)).headers);
  assert.equal(h.get('X-Scope-OrgID'), 'team-a');
  assert.equal(h.get('Authorization'), null);
  saveToken(s, 'zq_t');
  forgetToken(s);
  assert.equal(savedTenant(s), '');
  assert.equal(saveTenant(s, ''), null);
});

test('authProblem tells asking for a token, a valid one, and a stronger one apart', () => {
  assert.match(authProblem(401, false, 'no token').title, /needs a token/);
  assert.match(authProblem(401, true, 'token expired').detail, /token expired/);
  assert.match(authProblem(403, true, 'token "g" has scopes "read"; this needs "admin"').detail, /needs "admin"/);
  assert.equal(authProblem(404, true, 'x'), null);
  assert.equal(authProblem(500, false, 'x'), null);
});
