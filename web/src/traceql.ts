// Pure helpers of the search page's TraceQL box: the builder form written
// as TraceQL, the column of a syntax error the API reports, and what to
// suggest at the caret. Unit-tested in test/model.test.mjs.

// The Zipkin search form's fields (durations in µs, as the API takes them).
export interface SearchForm {
  serviceName?: string; spanName?: string; remoteServiceName?: string;
  annotationQuery?: string; minDuration?: number; maxDuration?: number;
  minTraceDuration?: number; maxTraceDuration?: number;
}

// quote is a TraceQL string literal.
export const quote = (s: string): string => JSON.stringify(s);

// attr is an attribute reference, quoted when its name has characters
// that would end it (a quoted name escapes only " and \, as TraceQL reads it).
export const attr = (scope: string, name: string): string =>
  /^[^\s{}()=~!<>&|^,"`\\]+$/.test(name) && !/^\d/.test(name) ? `${scope}.${name}`
    : `${scope}."${name.replace(/[\\"]/g, (c) => '\\' + c)}"`;

// duration is µs as a TraceQL duration literal.
export function duration(us: number): string {
  if (us % 1_000_000 === 0) return `${us / 1_000_000}s`;
  if (us % 1000 === 0) return `${us / 1000}ms`;
  return `${us}us`;
}

// formToTraceQL writes the Zipkin form as one spanset filter, as TraceQL
// sees Zipkin spans (README, "How Zipkin spans look to TraceQL"): the
// service is resource.service.name, the remote service
// span.peer.service, a tag k=v span.k = "v", `error` the error status,
// another bare word an event (annotation) name.
export function formToTraceQL(f: SearchForm): string {
  const conds: string[] = [];
  if (f.serviceName) conds.push(`resource.service.name = ${quote(f.serviceName)}`);
  if (f.spanName) conds.push(`name = ${quote(f.spanName)}`);
  if (f.remoteServiceName) conds.push(`span.peer.service = ${quote(f.remoteServiceName)}`);
  for (const term of (f.annotationQuery ?? '').split(/\s+and\s+/i).map((t) => t.trim()).filter(Boolean)) {
    const eq = term.indexOf('=');
    if (eq > 0) {
      const key = term.slice(0, eq);
      conds.push(`${attr('span', key)} = ${quote(term.slice(eq + 1))}`);
    } else if (term === 'error') {
      conds.push('status = error');
    } else {
      conds.push(`event:name = ${quote(term)}`);
    }
  }
  if (f.minDuration) conds.push(`duration >= ${duration(f.minDuration)}`);
  if (f.maxDuration) conds.push(`duration <= ${duration(f.maxDuration)}`);
  if (f.minTraceDuration) conds.push(`trace:duration >= ${duration(f.minTraceDuration)}`);
  if (f.maxTraceDuration) conds.push(`trace:duration <= ${duration(f.maxTraceDuration)}`);
  return conds.length ? `{ ${conds.join(' && ')} }` : '{ }';
}

// errorColumn is the 1-based column of an API error about q ("... at
// column 8: ..."), or undefined.
export function errorColumn(message: string): number | undefined {
  const m = /at column (\d+)/.exec(message);
  return m ? Number(m[1]) : undefined;
}

// Completion says what the caret is in: a field name being typed (after
// {, &&, ||, (, !), or a value after field = (or !=, =~, !~).
export type Completion =
  | { kind: 'field'; prefix: string; from: number }
  | { kind: 'value'; field: string; prefix: string; from: number }
  | { kind: 'none' };

export function completion(text: string, caret: number): Completion {
  const before = text.slice(0, caret);
  const value = /([.\w:-]+)\s*(?:=|!=|=~|!~)\s*("?[^"&|}]*)$/.exec(before);
  if (value) {
    const prefix = value[2].replace(/^"/, '');
    return { kind: 'value', field: value[1], prefix, from: caret - prefix.length };
  }
  const field = /(?:^|[{(!]|&&|\|\|)\s*([.\w:-]*)$/.exec(before);
  if (field) return { kind: 'field', prefix: field[1], from: caret - field[1].length };
  return { kind: 'none' };
}

// fieldNames are the names the tags API gives, as a query writes them:
// scoped attributes (resource.x, span.x, event.x, ...) and intrinsics.
export function fieldNames(scopes: { name: string; tags: string[] }[]): string[] {
  const out: string[] = [];
  for (const s of scopes) for (const t of s.tags) out.push(s.name === 'intrinsic' ? t : attr(s.name, t));
  return [...new Set(out)].sort();
}
