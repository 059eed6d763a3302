import { raftpb } from '../pb/index.js';
import { confChangeFromEntry, describeConfChange } from './confchange/index.js';
import type { Ready, SoftState } from './raw-node.js';
import { sortedIds } from './tracker/index.js';

/** Renders entry payloads; the default prints them as a quoted string. */
export type EntryFormatter = (data: Uint8Array) => string;

const decoder = new TextDecoder();
export const defaultEntryFormatter: EntryFormatter = (data) => JSON.stringify(decoder.decode(data));

const entryTypeNames: Record<raftpb.EntryType, string> = {
  0: 'EntryNormal',
  1: 'EntryConfChange',
  2: 'EntryConfChangeV2',
};

/** "term/index type payload", e.g. `1/3 EntryNormal "foo"` or `2/5 EntryConfChangeV2 v4 l5`. */
export function describeEntry(e: raftpb.Entry, f: EntryFormatter = defaultEntryFormatter): string {
  let s = `${e.term}/${e.index} ${entryTypeNames[e.type]}`;
  if (e.type === raftpb.EntryType.EntryNormal) {
    if (e.data.length > 0) s += ` ${f(e.data)}`;
    return s;
  }
  const cc = confChangeFromEntry(e);
  if (cc !== undefined) s += ` ${describeConfChange(cc)}`;
  return s;
}

export function describeEntries(ents: readonly raftpb.Entry[], f: EntryFormatter = defaultEntryFormatter): string {
  return ents.map((e) => describeEntry(e, f)).join('\n');
}

export function describeHardState(hs: raftpb.HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

export function describeSoftState(ss: SoftState): string {
  return `Lead:${ss.lead} State:${ss.raftState}`;
}

export function describeConfState(cs: raftpb.ConfState): string {
  const ids = (xs: readonly bigint[]): string => `[${sortedIds(xs).join(' ')}]`;
  return `Voters:${ids(cs.voters)} VotersOutgoing:${ids(cs.votersOutgoing)} Learners:${ids(cs.learners)} LearnersNext:${ids(cs.learnersNext)} AutoLeave:${cs.autoLeave}`;
}

export function describeSnapshot(s: raftpb.Snapshot): string {
  const m = s.metadata ?? raftpb.SnapshotMetadata.create();
  return `Index:${m.index} Term:${m.term} ConfState:${describeConfState(m.confState ?? raftpb.ConfState.create())}`;
}

/** `1->2 MsgApp Term:1 Log:1/2 Commit:2 Entries:[1/3 EntryNormal "foo"]`, the shape of etcd-io/raft's transcripts. */
export function describeMessage(m: raftpb.Message, f: EntryFormatter = defaultEntryFormatter): string {
  let s = `${m.from}->${m.to} ${raftpb.MessageType_info.names[m.type] ?? m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map((e) => describeEntry(e, f)).join(', ')}]`;
  if (m.context.length > 0) s += ` Context:${f(m.context)}`;
  if (m.snapshot !== undefined && (m.snapshot.metadata?.index ?? 0) > 0) s += ` Snapshot: ${describeSnapshot(m.snapshot)}`;
  return s;
}

/** A multi-line rendering of a Ready, each part under its own heading. */
export function describeReady(rd: Ready, f: EntryFormatter = defaultEntryFormatter): string {
  const lines: string[] = [];
  if (rd.softState !== undefined) lines.push(describeSoftState(rd.softState));
  if (rd.hardState !== undefined) lines.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.readStates.length > 0) {
    lines.push('ReadStates:');
    for (const rs of rd.readStates) lines.push(`  Index:${rs.index} Ctx:${f(rs.requestCtx)}`);
  }
  if (rd.entries.length > 0) {
    lines.push('Entries:');
    for (const e of rd.entries) lines.push(`${describeEntry(e, f)}`);
  }
  if (rd.snapshot !== undefined) lines.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  if (rd.committedEntries.length > 0) {
    lines.push('CommittedEntries:');
    for (const e of rd.committedEntries) lines.push(`${describeEntry(e, f)}`);
  }
  if (rd.messages.length > 0) {
    lines.push('Messages:');
    for (const m of rd.messages) lines.push(describeMessage(m, f));
  }
  return lines.length === 0 ? '<empty Ready>' : lines.join('\n');
}
