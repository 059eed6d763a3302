import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nopLogger } from '../base/index.js';
import { RevisionHashes } from '../mvcc/index.js';
import {
  answerDigest, checkRevisionDigests, decodeDigestReply, decodeDigestRequest, encodeDigestReply, encodeDigestRequest,
  type RevisionCheckHost,
} from './revision-check.js';

/** Hashes of revisions (from, to]; `bad` revisions hash differently. */
function ring(from: number, to: number, bad: readonly number[] = []): RevisionHashes {
  const r = new RevisionHashes(from, 1000);
  for (let rev = from + 1; rev <= to; rev++) r.push(rev, bad.includes(rev) ? 0xdead : rev * 7);
  return r;
}

interface Peer {
  readonly id: bigint;
  readonly hashes?: RevisionHashes;
}

function host(own: RevisionHashes, peers: readonly Peer[], raised: bigint[]): RevisionCheckHost {
  return {
    memberId: 1n,
    logger: nopLogger,
    hashes: () => own,
    peerIds: () => peers.map((p) => p.id),
    peerDigest: (id, req) => {
      const p = peers.find((x) => x.id === id);
      if (p?.hashes === undefined) return Promise.reject(new Error('unreachable'));
      // Over the wire and back, as the server's rpc does.
      return Promise.resolve(decodeDigestReply(encodeDigestReply(answerDigest(p.hashes, decodeDigestRequest(encodeDigestRequest(req))))));
    },
    raiseCorrupt: (id) => raised.push(id),
  };
}

test('revision check: members alike raise nothing, whatever part of the span each holds', async () => {
  const raised: bigint[] = [];
  const r = await checkRevisionDigests(host(ring(10, 50), [{ id: 2n, hashes: ring(30, 45) }, { id: 3n, hashes: ring(0, 60) }, { id: 4n }], raised));
  assert.deepEqual(r, { compared: 2, mismatched: [], atFault: [] });
  assert.deepEqual(raised, []);
});

test('revision check: the member that disagrees with the others is named', async () => {
  const raised: bigint[] = [];
  const r = await checkRevisionDigests(host(ring(10, 50), [{ id: 2n, hashes: ring(10, 50, [33]) }, { id: 3n, hashes: ring(10, 50) }], raised));
  assert.deepEqual(r, { compared: 2, mismatched: [2n], atFault: [2n] });
  assert.deepEqual(raised, [2n]);
});

test('revision check: a leader that disagrees with two or more members names itself', async () => {
  const raised: bigint[] = [];
  const r = await checkRevisionDigests(host(ring(10, 50, [20]), [{ id: 2n, hashes: ring(10, 50) }, { id: 3n, hashes: ring(15, 50) }, { id: 5n }], raised));
  assert.deepEqual(r, { compared: 2, mismatched: [2n, 3n], atFault: [1n] });
  assert.deepEqual(raised, [1n]);
});

test('revision check: with one member to compare with, it is named; spans not held in common are not compared', async () => {
  const raised: bigint[] = [];
  assert.deepEqual(await checkRevisionDigests(host(ring(10, 50), [{ id: 2n, hashes: ring(10, 50, [50]) }], raised)), { compared: 1, mismatched: [2n], atFault: [2n] });
  assert.deepEqual(raised, [2n]);
  // The only bad revision is one the leader no longer holds, or one the member has not applied yet.
  assert.deepEqual((await checkRevisionDigests(host(ring(20, 50), [{ id: 2n, hashes: ring(10, 50, [15]) }], []))).mismatched, []);
  assert.deepEqual((await checkRevisionDigests(host(ring(10, 40), [{ id: 2n, hashes: ring(10, 50, [45]) }], []))).mismatched, []);
  // Nothing in common at all (the member restarted after the leader's newest): not compared.
  assert.deepEqual(await checkRevisionDigests(host(ring(10, 40), [{ id: 2n, hashes: ring(40, 40) }], [])), { compared: 0, mismatched: [], atFault: [] });
  // A leader that applied nothing since it opened asks nobody.
  assert.deepEqual(await checkRevisionDigests(host(ring(40, 40), [{ id: 2n, hashes: ring(10, 50, [45]) }], [])), { compared: 0, mismatched: [], atFault: [] });
});

test('revision check: malformed rpc bodies are refused', () => {
  assert.throws(() => decodeDigestRequest(Buffer.from('{"from":-1,"to":3}')), /bad from/);
  assert.throws(() => decodeDigestRequest(Buffer.from('{"from":1}')), /bad to/);
  assert.throws(() => decodeDigestReply(Buffer.from('{"from":1,"to":3,"digest":"x"}')), /bad digest/);
  assert.throws(() => decodeDigestReply(Buffer.from('not json')));
  assert.deepEqual(decodeDigestReply(Buffer.from('{"from":1,"to":1,"digest":null}')), { from: 1, to: 1, digest: null });
});

test('revision check: a divergence reported once is not reported again (a disarm stands); a new one is', async () => {
  const raised: bigint[] = [];
  const reported = new Map<bigint, number>();
  const peers = (bad: readonly number[]): Peer[] => [{ id: 2n, hashes: ring(10, 60, bad) }, { id: 3n, hashes: ring(10, 60) }];
  const withMemory = (own: RevisionHashes, p: Peer[]): RevisionCheckHost => ({ ...host(own, p, raised), reported });
  assert.deepEqual((await checkRevisionDigests(withMemory(ring(10, 50), peers([33])))).atFault, [2n]);
  assert.equal(reported.get(2n), 50);
  // The alarm was disarmed; the same revisions are held still: nothing new to say.
  assert.deepEqual(await checkRevisionDigests(withMemory(ring(10, 50), peers([33]))), { compared: 1, mismatched: [], atFault: [] });
  // The member diverges again later: named again.
  assert.deepEqual((await checkRevisionDigests(withMemory(ring(10, 60), peers([33, 55])))).atFault, [2n]);
  assert.deepEqual(raised, [2n, 2n]);
  // Without the memory, every pass names it.
  assert.deepEqual((await checkRevisionDigests(host(ring(10, 50), peers([33]), []))).atFault, [2n]);
});
