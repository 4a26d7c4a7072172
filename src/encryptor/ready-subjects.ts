// Subjects whose records a large batch can seal straight from the fetched bytes (seal-from-fetch.ts),
// without looking their keys up: each has a live key of the sealing thread's algorithm, and the time
// it was last forgotten, if ever (its records from before then are born shredded, which only the
// batches that look keys up do). Batches that look keys up (seal-records.ts) fill the table with
// their subjects. Before each use it drops, keys wiped, every subject whose key or forget time changed
// since (PartitionKeys.changesSince: a new key, a forget, a key record applied, a rollback), or
// everything when it cannot tell, so it never holds a key the store would not give.
import { CHACHA20_POLY1305 } from '../crypto/aead-algorithms.js';
import { SpanKey } from '../crypto/off-thread/span-envelopes.js';
import type { DataKey } from '../keys/master-key.js';
import type { PartitionKeys } from '../keys/partition-keys.js';
import { subjectHash } from '../keys/subject-ids.js';
import { envelopePrefix } from '../wire/envelope.js';

export interface ReadySubject {
  /** The subject's bytes: a view of the span key's copy (a view of the record would keep a whole fetch alive). */
  subject: Uint8Array;
  spanKey: SpanKey;
  /** The record key of the subject's records: its key generation's pseudonym (SHREDDER_RECORD_KEYS=pseudonym); undefined: the input's key. */
  recordKey: Buffer | undefined;
  forgottenAt: number | undefined;
  /** The next subject of the same hash. */
  next: ReadySubject | undefined;
}

/** A subject's key in the table: its subjectHash kept a small integer (a Smi: a larger number would be boxed in every lookup). */
const tableKey = (subject: Uint8Array): number => subjectHash(subject) & 0x3fff_ffff;

export class ReadySubjects {
  /** By tableKey, each the first of a chain of subjects of that key. */
  private readonly byHash = new Map<number, ReadySubject>();
  private generation = -1;
  size = 0;

  constructor(private readonly keys: PartitionKeys) {}

  /** Drops the subjects whose keys changed since the last refresh; call before using the table. */
  refresh(): this {
    if (this.generation === this.keys.generation) return this;
    const changed = this.size === 0 ? [] : this.keys.changesSince(this.generation);
    if (changed === undefined) this.clear();
    else for (const id of changed) this.remove(Buffer.from(id, 'latin1'));
    this.generation = this.keys.generation;
    return this;
  }

  find(subject: Uint8Array): ReadySubject | undefined {
    return this.findIn(tableKey(subject), subject);
  }

  private findIn(hash: number, subject: Uint8Array): ReadySubject | undefined {
    let ready = this.byHash.get(hash);
    while (ready !== undefined && !sameBytes(ready.subject, subject)) ready = ready.next;
    return ready;
  }

  /** Keeps the subject's live key (of the sealing thread's algorithm: others are not kept). Call refresh() first. */
  add(subject: Uint8Array, key: DataKey, forgottenAt: number | undefined): void {
    if (key.algorithm !== CHACHA20_POLY1305) return;
    const hash = tableKey(subject);
    if (this.findIn(hash, subject) !== undefined) return;
    this.makeRoom(1);
    const spanKey = new SpanKey({ key: key.key, prefix: envelopePrefix(key.algorithm, key.keyId) }, subject);
    const recordKey = key.pseudonym && Buffer.from(key.pseudonym);
    this.byHash.set(hash, { subject: spanKey.subject, spanKey, recordKey, forgottenAt, next: this.byHash.get(hash) });
    this.size++;
  }

  /** Makes room for `count` more subjects, so that adding them does not start the table over midway. */
  makeRoom(count: number): void {
    if (this.size + count > this.limit) this.clear();
  }

  /** How many subjects the table keeps at most: as many as the partition's key cache (past it, it starts over: it is only a cache). */
  get limit(): number {
    return this.keys.cacheCapacity;
  }

  private remove(subject: Uint8Array): void {
    const hash = tableKey(subject);
    let previous: ReadySubject | undefined;
    for (let ready = this.byHash.get(hash); ready !== undefined; previous = ready, ready = ready.next) {
      if (!sameBytes(ready.subject, subject)) continue;
      if (previous) previous.next = ready.next;
      else if (ready.next) this.byHash.set(hash, ready.next);
      else this.byHash.delete(hash);
      ready.spanKey.wipe();
      this.size--;
      return;
    }
  }

  clear(): void {
    for (const first of this.byHash.values()) {
      for (let ready: ReadySubject | undefined = first; ready !== undefined; ready = ready.next) ready.spanKey.wipe();
    }
    this.byHash.clear();
    this.size = 0;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const tables = new WeakMap<PartitionKeys, ReadySubjects>();

/** The table of a partition's keys (made at first use), refreshed. */
export function readySubjects(keys: PartitionKeys): ReadySubjects {
  let table = tables.get(keys);
  if (!table) tables.set(keys, (table = new ReadySubjects(keys)));
  return table.refresh();
}
