/**
 * The Maintenance service: Status (learners too), Alarm (through raft),
 * Defragment, Hash, HashKV, MoveLeader, and Snapshot, which streams one
 * consistent view of the backend in 32 KiB chunks followed by its SHA-256,
 * as etcd's (etcdctl snapshot save checks the digest).
 */
import { createHash } from 'node:crypto';
import { serverStreaming, unary, type ServiceHandlers } from '../grpc/index.js';
import { snapshotChunkBytes } from '../base/index.js';
import { etcdserverpb } from '../pb/index.js';
import type { EtcdServer } from '../server/index.js';
import { check, checkCall, guard, requestContext, untranslatedAuthErrors } from './call-context.js';

type MaintenanceMethods = typeof etcdserverpb.MaintenanceService.methods;

export function maintenanceService(s: EtcdServer): ServiceHandlers<MaintenanceMethods> {
  // etcd 3.4's isAuthenticated (Defragment, Snapshot, Hash, HashKV): its errors untranslated.
  const admin = (call: Parameters<typeof requestContext>[1]): Promise<void> =>
    untranslatedAuthErrors(async () => {
      const ctx = await requestContext(s, call);
      if (s.auth.isEnabled()) check(s.auth.isAdminPermitted(ctx.user));
    });
  return {
    Alarm: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        // etcd 3.4 checks no permission for alarms, with or without a token; a bad token fails untranslated.
        const ctx = await untranslatedAuthErrors(() => requestContext(s, call));
        // etcd 3.4 answers alarms without a response header.
        const resp = await s.alarm(req, ctx);
        return etcdserverpb.AlarmResponse.create({ alarms: resp.alarms });
      }),
    ),
    Status: unary((_req, call) =>
      guard(() => {
        checkCall(s, call, true);
        // etcd 3.4 answers Status to anyone: the token is not even read.
        return Promise.resolve(s.status());
      }),
    ),
    Defragment: unary((_req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        await admin(call);
        await s.defragment();
        // etcd 3.4 answers a defragment without a response header.
        return etcdserverpb.DefragmentResponse.create({});
      }),
    ),
    Hash: unary((_req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        await admin(call);
        return s.hash();
      }),
    ),
    HashKV: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        await admin(call);
        return s.hashKv(req);
      }),
    ),
    MoveLeader: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        // etcd 3.4 checks no token or permission for MoveLeader.
        await s.moveLeader(req.targetID, { call: call.signal });
        // etcd 3.4 answers MoveLeader without a response header.
        return etcdserverpb.MoveLeaderResponse.create({});
      }),
    ),
    Snapshot: serverStreaming((_req, call) =>
      guard(async () => {
        // etcd 3.4 refuses every stream on a learner, this one too (3.5 serves it).
        checkCall(s, call, false);
        await admin(call);
        // etcd_disk_backend_snapshot_duration_seconds: from the view until the last byte went out, as etcd times it.
        const startedMs = performance.now();
        const db = await s.snapshotDb();
        try {
          const sha = createHash('sha256');
          let sent = 0;
          // The pieces cut into chunks of snapshotChunkBytes, the last one shorter, as etcd's are.
          let chunk = Buffer.allocUnsafe(Math.min(snapshotChunkBytes, db.size));
          let filled = 0;
          for (let piece = await db.next(); piece !== undefined; piece = await db.next()) {
            for (let at = 0; at < piece.length; ) {
              const n = Math.min(chunk.length - filled, piece.length - at);
              if (n === 0) throw new Error(`snapshot longer than its size ${db.size}`);
              chunk.set(piece.subarray(at, at + n), filled);
              filled += n;
              at += n;
              if (filled < chunk.length) continue;
              sent += filled;
              sha.update(chunk);
              call.write(etcdserverpb.SnapshotResponse.create({ remainingBytes: db.size - sent, blob: chunk }));
              chunk = Buffer.allocUnsafe(Math.min(snapshotChunkBytes, db.size - sent));
              filled = 0;
              if (call.bufferedBytes > 4 * snapshotChunkBytes) await call.drained();
              if (call.closed) return;
            }
          }
          if (sent !== db.size) throw new Error(`snapshot of ${sent} bytes, short of its size ${db.size}`);
          call.write(etcdserverpb.SnapshotResponse.create({ remainingBytes: 0, blob: sha.digest() }));
        } finally {
          s.metrics.backendSnapshotSeconds.observe((performance.now() - startedMs) / 1000);
          await db.stop();
        }
      }),
    ),
  };
}
