/** Cluster members and removed member ids in the backend. */
import { assert, idFromHex, idToHex, utf8, type MemberId } from '../base/index.js';
import { serverpb } from '../pb/index.js';
import type { Schema } from './meta.js';

const removedValue = utf8('removed');
const firstKey = new Uint8Array([0]);

export class MembershipStorage {
  constructor(private readonly schema: Schema) {}

  putMember(member: serverpb.MemberRecord): void {
    assert(member.ID !== 0n, 'a member has a non-zero id');
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.members, utf8(idToHex(member.ID)), serverpb.MemberRecord.encode(member)));
  }

  /** Removes the member and remembers its id as removed (it may never rejoin). */
  removeMember(id: MemberId): void {
    const key = utf8(idToHex(id));
    this.schema.backend.write((tx) => {
      tx.delete(this.schema.buckets.members, key);
      tx.put(this.schema.buckets.membersRemoved, key, removedValue);
    });
  }

  /** Forgets every member and removed id (a restored snapshot starts a new cluster). */
  trim(): void {
    const { members, membersRemoved } = this.schema.buckets;
    this.schema.backend.write((tx) => {
      for (const bucket of [members, membersRemoved]) {
        for (const e of tx.range(bucket, firstKey, undefined)) tx.delete(bucket, e.key);
      }
    });
  }

  /** Every member, in the order of their hex ids. */
  members(): serverpb.MemberRecord[] {
    return this.schema.backend.range(this.schema.buckets.members, firstKey, undefined).map((e) => serverpb.MemberRecord.decode(e.value));
  }

  removedIds(): MemberId[] {
    return this.schema.backend.range(this.schema.buckets.membersRemoved, firstKey, undefined).map((e) => {
      const id = idFromHex(Buffer.from(e.key).toString('latin1'));
      assert(id !== undefined, 'members_removed keys are hex ids');
      return id;
    });
  }
}
