/**
 * Checks a database in a process of its own: `node db-check-child.js <path>`
 * exits 0 when every record reads and matches its checksum, 2 when one does
 * not (the reason on stderr). A file damaged where LMDB does not check
 * (a branch page) can abort the process reading it instead; run here, that
 * abort is the answer rather than the member's end (backend-repair.ts).
 */
import { isBackendCorrupt } from '../backend/index.js';
import { Schema } from '../schema/index.js';

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write('usage: db-check-child <db path>\n');
  process.exit(64);
}
try {
  const schema = Schema.open({ path });
  schema.backend.verify();
  await schema.backend.close();
  process.exit(0);
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(isBackendCorrupt(e) ? 2 : 1);
}
