import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGoInt64 } from './go-int.js';

test("Go's base-0 integers: prefixes, octal, underscores, signs and bounds as strconv reads them", () => {
  const cases: [string, boolean, bigint | string][] = [
    ['10', true, 10n], ['010', true, 8n], ['0x1f', false, 31n], ['0X1F', true, 31n], ['0o17', true, 15n], ['0b101', true, 5n],
    ['1_000', true, 1000n], ['0x_1f', true, 31n], ['0_10', true, 8n], ['-5', true, -5n], ['+5', true, 5n], ['0', false, 0n],
    ['-5', false, 'invalid syntax'], ['+5', false, 'invalid syntax'], ['08', true, 'invalid syntax'], ['1__0', true, 'invalid syntax'],
    ['_1', true, 'invalid syntax'], ['1_', true, 'invalid syntax'], ['0x', true, 'invalid syntax'], ['', true, 'invalid syntax'], ['1e3', true, 'invalid syntax'],
    ['9223372036854775807', true, 2n ** 63n - 1n], ['9223372036854775808', true, 'value out of range'], ['-9223372036854775808', true, -(2n ** 63n)],
    ['-9223372036854775809', true, 'value out of range'], ['18446744073709551615', false, 2n ** 64n - 1n], ['18446744073709551616', false, 'value out of range'],
  ];
  for (const [text, signed, want] of cases) assert.equal(parseGoInt64(text, signed), want, `${text} (${signed ? 'int' : 'uint'})`);
});
