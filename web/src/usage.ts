// The store's disk use as the pipeline page shows it: pure, unit-tested.

// bytesText is a byte count in binary units.
export function bytesText(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

// budgetText is the store's budget (ZIPQ_RETENTION_BYTES) and the oldest
// day it keeps.
export function budgetText(q: { storageBytes?: number; storageBudgetBytes?: number; oldestDay?: string; overBudget?: boolean; dictionary?: number; dictionaryGain?: number }): string {
  const dict = q.dictionary ? `; learned dictionary ${q.dictionary} (${Math.round(100 * (q.dictionaryGain ?? 0))}% smaller)` : '';
  const since = (q.oldestDay ? `spans since ${q.oldestDay}` : 'no spans kept') + dict;
  if (!q.storageBudgetBytes) return `${since}; no budget`;
  const pct = Math.round((100 * (q.storageBytes ?? 0)) / q.storageBudgetBytes);
  return `${pct}% of ${bytesText(q.storageBudgetBytes)}${q.overBudget ? ' (over, with only today left)' : ''}; ${since}`;
}

// tenantBudgetText is the tenant's share of the disk against its own
// budget (retention_bytes), as budgetText says the store's.
export function tenantBudgetText(q: { tenantBytes?: number; tenantBudgetBytes?: number; tenantOldestDay?: string; tenantOverBudget?: boolean }): string {
  return budgetText({ storageBytes: q.tenantBytes, storageBudgetBytes: q.tenantBudgetBytes, oldestDay: q.tenantOldestDay, overBudget: q.tenantOverBudget });
}
