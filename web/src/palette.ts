// Service colours: a palette of distinct hues assigned in order to the
// services one view shows, so two services on screen never share a
// colour (hashing names into hues made frontend, api-gateway and orders
// all purple). None is red: red means error everywhere in the UI.

// Tableau-like, with reds and pinks left out.
const BASE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#9c755f', '#17becf',
  '#8c6d31', '#637939', '#393b79', '#bcbd22', '#7f7f7f', '#2ca02c', '#1f77b4', '#9467bd'];

export const ERROR_COLOR = '#d33a3a';

// colorAt is the i-th colour: the base palette, then golden-angle hues
// that skip the red band (330°–30°).
export function colorAt(i: number): string {
  if (i < BASE.length) return BASE[i];
  const hue = 30 + (((i - BASE.length) * 137.508) % 270);
  const light = 38 + ((i * 7) % 3) * 10;
  return `hsl(${hue.toFixed(0)} 55% ${light}%)`;
}

// palette assigns each name a colour, distinct within the list (sorted,
// so the same set of services always gets the same colours).
export function palette(names: Iterable<string>): (name: string) => string {
  const sorted = [...new Set(names)].sort();
  const m = new Map(sorted.map((n, i) => [n, colorAt(i)]));
  return (n: string) => m.get(n) ?? colorAt(sorted.length + (hash(n) % 64));
}

function hash(s: string): number {
  let x = 0;
  for (let i = 0; i < s.length; i++) x = (x * 31 + s.charCodeAt(i)) | 0;
  return Math.abs(x);
}
