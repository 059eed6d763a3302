// Leases round-trip through the backend, negative ids included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Schema } from './meta.js';
import { LeaseStorage } from './lease.js';

test('put, delete, loadAll across a reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lease-storage-'));
  try {
    const path = join(dir, 'db');
    let schema = Schema.open({ path });
    let leases = new LeaseStorage(schema);
    schema.backend.write(() => {
      leases.put({ id: 0x694d7b8ba4e0a60cn, ttlSeconds: 10, remainingTtlSeconds: 0 });
      leases.put({ id: -5n, ttlSeconds: 60, remainingTtlSeconds: 30 });
      leases.put({ id: 7n, ttlSeconds: 5, remainingTtlSeconds: 0 });
      leases.delete(7n);
    });
    await schema.backend.forceCommit();
    await schema.backend.close();
    schema = Schema.open({ path });
    leases = new LeaseStorage(schema);
    const all = leases.loadAll();
    assert.deepEqual(
      all.map((l) => [l.id, l.ttlSeconds, l.remainingTtlSeconds]),
      [
        [0x694d7b8ba4e0a60cn, 10, 0],
        [-5n, 60, 30],
      ],
    );
    await schema.backend.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
