// goSort against orders Go 1.19's sort.Sort gave for the same inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from './crc32c.js';
import { goSort } from './go-sort.js';

/** 60 inputs of 13 to 412 values with many ties: random, runs, descending, mostly ascending; every other one reversed (sort.Reverse). */
function inputs(): Array<{ rev: boolean; v: number[] }> {
  let x = 1;
  const next = (n: number): number => {
    x = (x * 48271) % 2147483647;
    return x % n;
  };
  const out: Array<{ rev: boolean; v: number[] }> = [];
  for (let s = 1; s <= 60; s++) {
    const n = 13 + ((s * 37) % 400);
    const range = [2, 3, 5, 17, 1000][s % 5] as number;
    const shape = s % 4;
    const v = Array.from({ length: n }, (_, i) => (shape === 0 ? next(range) : shape === 1 ? Math.floor(i / 5) : shape === 2 ? (n - i) % range : next(8) === 0 ? next(range) : i % range));
    out.push({ rev: s % 2 === 0, v });
  }
  return out;
}

/** Where each input position ends up, as Go printed it (JSON arrays, one line each). */
function orders(): string[] {
  return inputs().map(({ rev, v }) => {
    const items = v.map((value, idx) => ({ value, idx }));
    goSort(items, rev ? (a, b) => b.value < a.value : (a, b) => a.value < b.value);
    return JSON.stringify(items.map((it) => it.idx));
  });
}

test("goSort leaves ties where Go's sort.Sort does", () => {
  const got = orders();
  // The third input (135 values in runs of 5) in full; all 60 by their CRC-32C.
  assert.equal(
    got[2],
    '[119,102,0,68,45,17,18,69,72,86,1,35,103,52,120,19,36,104,53,121,71,70,87,2,88,105,3,122,20,54,37,21,55,38,89,4,123,22,51,39,107,56,73,5,40,74,6,23,57,91,7,41,109,92,75,24,58,76,8,59,42,78,25,93,110,114,26,77,60,94,111,9,27,112,10,106,44,61,95,43,62,79,11,96,28,113,80,63,46,97,90,12,29,47,64,30,81,13,98,108,115,65,48,82,14,34,116,85,99,31,66,100,49,83,15,32,117,33,118,16,50,84,67,101]',
  );
  assert.equal(crc32c(new TextEncoder().encode(got.join('\n'))).toString(16), 'd856f7c8');
  for (const [i, { rev, v }] of inputs().entries()) {
    const sorted = (JSON.parse(got[i] as string) as number[]).map((idx) => v[idx] as number);
    for (let k = 1; k < sorted.length; k++) assert.ok(rev ? sorted[k - 1]! >= sorted[k]! : sorted[k - 1]! <= sorted[k]!, `input ${i} sorted`);
  }
  const small = [3, 1, 2];
  goSort(small, (a, b) => a < b);
  assert.deepEqual(small, [1, 2, 3]);
});
