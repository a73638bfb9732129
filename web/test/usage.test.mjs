// Unit tests of the disk use texts (usage.ts) of the pipeline page.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { bytesText, budgetText } from '../.test-build/usage.js';

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
});
