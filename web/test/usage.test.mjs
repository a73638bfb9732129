// Unit tests of the disk use texts (usage.ts) of the pipeline page.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { bytesText, budgetText, tenantBudgetText } from '../.test-build/usage.js';

test('bytes: binary units, one decimal below ten', () => {
  assert.equal(bytesText(0), '0 bytes');
  assert.equal(bytesText(1023), '1023 bytes');
  assert.equal(bytesText(1536), '1.5 KiB');
  assert.equal(bytesText(50 * 1024 ** 3), '50 GiB');
  assert.equal(bytesText(3 * 1024 ** 5), '3072 TiB');
});

test('budget: share used, over budget said, the oldest day kept', () => {
  assert.equal(budgetText({ storageBytes: 5 << 20, oldestDay: '2026-11-27' }), 'spans since 2026-11-27; no budget');
  assert.equal(budgetText({ storageBytes: 3 * 2 ** 30, storageBudgetBytes: 4 * 2 ** 30, oldestDay: '2026-11-30' }), '75% of 4.0 GiB; spans since 2026-11-30');
  assert.equal(budgetText({ storageBytes: 5 * 2 ** 30, storageBudgetBytes: 4 * 2 ** 30, oldestDay: '2026-12-03', overBudget: true }),
    '125% of 4.0 GiB (over, with only today left); spans since 2026-12-03');
  assert.equal(budgetText({ storageBytes: 0, storageBudgetBytes: 1024 }), '0% of 1.0 KiB; no spans kept');
  assert.equal(budgetText({ storageBytes: 1024, oldestDay: '2026-12-01', dictionary: 2, dictionaryGain: 0.334 }),
    'spans since 2026-12-01; learned dictionary 2 (33% smaller); no budget');
  // A tenant's share: its own budget, never the store's dictionary.
  assert.equal(tenantBudgetText({ tenantBytes: 3 << 20, tenantBudgetBytes: 4 << 20, tenantOldestDay: '2026-12-02' }), '75% of 4.0 MiB; spans since 2026-12-02');
  assert.equal(tenantBudgetText({ tenantBytes: 5 << 20, tenantOldestDay: '2026-12-02' }), 'spans since 2026-12-02; no budget');
  assert.equal(tenantBudgetText({ tenantBytes: 5 << 20, tenantBudgetBytes: 4 << 20, tenantOldestDay: '2026-12-05', tenantOverBudget: true }),
    '125% of 4.0 MiB (over, with only today left); spans since 2026-12-05');
});
