/**
 * The V8 flags etcd-ts runs with: `npm start`, the `etcd-ts` bin (its
 * shebang) and the test harness pass them to node; flags.test.ts keeps the
 * three in step. They must be on node's command line: V8 freezes its flags
 * once the isolate starts, so v8.setFlagsFromString cannot set them.
 *
 * --interrupt-budget=16896 (V8 11.3's default is 67584): a function is
 * considered for optimization after a quarter of the bytecode executed. A
 * lightly loaded member runs its request path a few hundred times a second,
 * and with the default budget much of it stays in baseline code for the first
 * ten seconds or more. Measured on a fresh member (bench/RESULTS.md, section
 * 4): single-client puts in the first 2 s 1079-1122/s against 637-731/s;
 * after 8 s 1647-1737/s against 1223-1578/s; 1000 clients unchanged or a
 * little better.
 *
 * --initial-old-space-size=64: the old generation may grow to 64 MiB before a
 * full collection, whatever the heap holds. V8 starts marking the old
 * generation as soon as its room left is below the new space's capacity (16
 * MiB here); a member with a small heap (12 MiB after a collection) has
 * about that much room, so a member serving large responses fell, in about
 * half of its runs, into a full collection every 30-50 ms that never ended.
 * Ranges of 10 values of 4 KiB then cost 330-560 µs of server CPU each
 * against 100-160 in the other runs; of 32 KiB, 2.4-3.0 ms against 0.5-0.6.
 * With the floor: no such run in 12, RSS unchanged (bench/RESULTS.md,
 * section 12). A member whose heap is larger has room enough already.
 */
export const nodeFlags: readonly string[] = ['--interrupt-budget=16896', '--initial-old-space-size=64'];
