// The local key store of one keys-topic partition: RocksDB, holding each subject's wrapped data key
// (never an unwrapped one) and the keys-topic offset it reflects (the checkpoint). It is a cache of
// the keys topic, which is the source of truth: it is rebuilt from there, never trusted alone.
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import rocksdb, { type RocksDB } from 'rocksdb';

/** What the store knows of a subject. */
export interface SubjectEntry {
  /**
   * The subject's last keys-topic value, absent once forgotten: a v1 wrapped key (74 bytes), or a value
   * of any length this build cannot read (a malformed one, a later format's), kept as it is.
   */
  wrapped?: Uint8Array;
  /** When the subject was last forgotten (ms since epoch), if ever. */
  forgottenAt?: number;
}

export interface KeyChange extends SubjectEntry {
  subject: Uint8Array;
  /**
   * The pseudonym of a pseudonymous value (v2) whose subject id was opened (`wrapped`), or of the
   * generation a tombstone destroyed: the store keeps pseudonym -> subject, for the records and forget
   * markers keyed by it (see pseudonymSubjects), while the generation lives, and after, until
   * `pseudonymKeptUntil`.
   */
  pseudonym?: Uint8Array;
  /** A destroyed generation's pseudonym: kept until then (ms since epoch, see deleteExpiredPseudonyms); undefined: removed with the change. */
  pseudonymKeptUntil?: number;
}

export interface Checkpoint {
  /** The next keys-topic offset to read: everything before it is in the store. */
  offset: number;
  /** When it was written (ms since epoch): an old checkpoint may have missed tombstones that compaction removed. */
  savedAt: number;
}

const SUBJECT_PREFIX = 0x73; // 's'
const PSEUDONYM_PREFIX = 0x70; // 'p'
const RETIRED_PREFIX = 0x72; // 'r': the queue of destroyed generations' pseudonyms, by the time they go
const CHECKPOINT_KEY = Buffer.from('checkpoint');
const EMPTY = Buffer.alloc(0);
// entry value: flags (bit 0 = has key) | forgottenAt (float64 BE, 0 = never) | the keys-topic value, all
// the rest of the entry, whatever its length. Stores written when the value was always 74 bytes read the
// same: their entries are 9 bytes, or 83 with a 74-byte value.
const ENTRY_HEAD = 9;

/** The store key of a subject, written into `slab` at `at`: a view of its bytes there. */
function subjectKeyIn(slab: Buffer, at: number, subject: Uint8Array): Buffer {
  slab[at] = SUBJECT_PREFIX;
  slab.set(subject, at + 1);
  return slab.subarray(at, at + 1 + subject.length);
}

const subjectKey = (subject: Uint8Array): Buffer => subjectKeyIn(Buffer.allocUnsafe(subject.length + 1), 0, subject);

const pseudonymKey = (pseudonym: Uint8Array): Buffer => {
  const key = Buffer.allocUnsafe(pseudonym.length + 1);
  key[0] = PSEUDONYM_PREFIX;
  key.set(pseudonym, 1);
  return key;
};

/** The keys from `prefix` (inclusive) to the next prefix (exclusive): every key a prefix holds. */
const prefixRange = (prefix: number) => ({ gte: Buffer.from([prefix]), lt: Buffer.from([prefix + 1]) });

/** A queued pseudonym's key: the prefix, the time it goes (ms, 8 bytes big-endian, so the queue is in time order), the pseudonym. */
const retiredKey = (until: number, pseudonym: Uint8Array): Buffer => {
  const key = Buffer.allocUnsafe(1 + 8 + pseudonym.length);
  key[0] = RETIRED_PREFIX;
  key.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(until))), 1);
  key.set(pseudonym, 9);
  return key;
};

/** A subject's entry, written into `slab` at `at`: a view of its bytes there. */
function encodeEntryIn(slab: Buffer, at: number, { wrapped, forgottenAt }: SubjectEntry): Buffer {
  slab[at] = wrapped ? 1 : 0;
  slab.writeDoubleBE(forgottenAt ?? 0, at + 1);
  if (wrapped) slab.set(wrapped, at + ENTRY_HEAD);
  return slab.subarray(at, at + ENTRY_HEAD + (wrapped ? wrapped.length : 0));
}

function decodeEntry(value: Buffer): SubjectEntry {
  const forgottenAt = value.readDoubleBE(1);
  return {
    wrapped: value[0] & 1 ? new Uint8Array(value.subarray(ENTRY_HEAD)) : undefined,
    forgottenAt: forgottenAt > 0 ? forgottenAt : undefined,
  };
}

function call<T = void>(fn: (cb: (err: Error | undefined, result: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result))));
}

export class KeyStore {
  private constructor(private readonly db: RocksDB, readonly location: string) {}

  static async open(location: string): Promise<KeyStore> {
    await mkdir(location, { recursive: true });
    // RocksDB (6.17, in the rocksdb package) keeps a path in its process-wide table of locked files
    // when it fails to open that path's LOCK file (an unwritable or immutable state dir), and refuses
    // every later open of the path in this process ("lock hold by current process"), even once the
    // dir is writable again: a fault that would outlast its cause. So the LOCK file is opened for
    // writing here first, and RocksDB is asked only once that works.
    const lock = await open(join(location, 'LOCK'), 'a');
    await lock.close();
    const db = rocksdb(location);
    await call((cb) => db.open({ createIfMissing: true }, cb));
    return new KeyStore(db, location);
  }

  /** Deletes a closed store's files. */
  static async destroy(location: string): Promise<void> {
    await call((cb) => rocksdb.destroy(location, cb));
  }

  async get(subjects: readonly Uint8Array[]): Promise<(SubjectEntry | undefined)[]> {
    if (subjects.length === 0) return [];
    const values = await call<(Buffer | undefined)[]>((cb) => this.db.getMany(subjects.map(subjectKey), { asBuffer: true }, cb));
    return values.map((value) => (value ? decodeEntry(value) : undefined));
  }

  async checkpoint(): Promise<Checkpoint | undefined> {
    const [value] = await call<(Buffer | undefined)[]>((cb) => this.db.getMany([CHECKPOINT_KEY], { asBuffer: true }, cb));
    return value ? (JSON.parse(value.toString('utf8')) as Checkpoint) : undefined;
  }

  /**
   * Applies changes and moves the checkpoint in one atomic write, so the store never reflects half a
   * keys-topic batch. A forgotten subject's range is compacted right away, so its old wrapped key does
   * not linger in RocksDB's files.
   */
  async apply(changes: readonly KeyChange[], checkpoint: Checkpoint): Promise<void> {
    // (every key and entry a view of one buffer: a restore writes tens of thousands at once, and a
    // buffer of its own for each was most of its garbage; and a chained batch, whose put() hands them
    // to RocksDB at once, costs a third of an array of operations, each an object the binding reads
    // property by property)
    let bytes = 0;
    for (const change of changes) bytes += 1 + change.subject.length + ENTRY_HEAD + (change.wrapped ? change.wrapped.length : 0);
    const slab = Buffer.allocUnsafe(bytes);
    let at = 0;
    const batch = this.db.batch();
    const dropped: Buffer[] = [];
    for (const change of changes) {
      const key = subjectKeyIn(slab, at, change.subject);
      at += key.length;
      const value = encodeEntryIn(slab, at, change);
      at += value.length;
      batch.put(key, value);
      // (the subject's bytes follow its store key's prefix: the index entry's value is a view of them)
      if (!change.pseudonym) continue;
      if (change.wrapped) {
        batch.put(pseudonymKey(change.pseudonym), key.subarray(1));
      } else if (change.pseudonymKeptUntil !== undefined) {
        // (a destroyed generation's, kept a while: queued for deleteExpiredPseudonyms)
        batch.put(pseudonymKey(change.pseudonym), key.subarray(1));
        batch.put(retiredKey(change.pseudonymKeptUntil, change.pseudonym), EMPTY);
      } else {
        batch.del(pseudonymKey(change.pseudonym));
        dropped.push(pseudonymKey(change.pseudonym));
      }
    }
    batch.put(CHECKPOINT_KEY, Buffer.from(JSON.stringify(checkpoint)));
    await call((cb) => batch.write({ sync: false }, cb));
    for (const change of changes) {
      if (change.wrapped) continue;
      const key = subjectKey(change.subject);
      await call((cb) => this.db.compactRange(key, key, cb));
    }
    for (const key of dropped) await call((cb) => this.db.compactRange(key, key, cb));
  }

  /**
   * Up to `limit` subjects' entries in key order, after `after` (exclusive; undefined: from the
   * first): how a background pass (re-wrapping, key counts) walks the store a slice at a time.
   */
  async entriesAfter(after: Uint8Array | undefined, limit: number): Promise<KeyChange[]> {
    const range = after ? { gt: subjectKey(after), lt: Buffer.from([SUBJECT_PREFIX + 1]) } : prefixRange(SUBJECT_PREFIX);
    const entries = await this.read({ ...range, limit });
    return entries.map(([key, value]) => ({ subject: new Uint8Array(key.subarray(1)), ...decodeEntry(value) }));
  }

  /** Every key and value of a range, in key order (up to `limit`). */
  private async read(range: { gt?: Buffer; gte?: Buffer; lt: Buffer; limit?: number }): Promise<[Buffer, Buffer][]> {
    const iterator = this.db.iterator({ ...range, keyAsBuffer: true, valueAsBuffer: true });
    const entries: [Buffer, Buffer][] = [];
    try {
      for (;;) {
        const [key, value] = await new Promise<[Buffer | undefined, Buffer | undefined]>((resolve, reject) =>
          iterator.next((err, k, v) => (err ? reject(err) : resolve([k, v]))),
        );
        if (!key) break;
        entries.push([key, value ?? EMPTY]);
      }
    } finally {
      await call((cb) => iterator.end(cb));
    }
    return entries;
  }

  /** Whether the store holds any pseudonym (SHREDDER_RECORD_KEYS=pseudonym was used on its keys topic). */
  async hasPseudonyms(): Promise<boolean> {
    return (await this.read({ ...prefixRange(PSEUDONYM_PREFIX), limit: 1 })).length > 0;
  }

  /** The subject each pseudonym stands for, as far as the store knows (see KeyChange.pseudonym). */
  async pseudonymSubjects(pseudonyms: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (pseudonyms.length === 0) return [];
    const values = await call<(Buffer | undefined)[]>((cb) => this.db.getMany(pseudonyms.map(pseudonymKey), { asBuffer: true }, cb));
    return values.map((value) => (value ? new Uint8Array(value) : undefined));
  }

  /**
   * Removes the destroyed generations' pseudonyms kept until before `now` (see KeyChange.pseudonymKeptUntil),
   * their files compacted at once; returns how many. Cheap when there are none: it reads the queue of
   * kept pseudonyms, in time order, only up to `now`.
   */
  async deleteExpiredPseudonyms(now: number): Promise<number> {
    const queued = (await this.read({ gte: Buffer.from([RETIRED_PREFIX]), lt: retiredKey(now, new Uint8Array(0)) })).map(([key]) => key);
    if (queued.length === 0) return 0;
    const batch = this.db.batch();
    const pseudonymKeys = queued.map((key) => pseudonymKey(key.subarray(1 + 8)));
    for (const key of queued) batch.del(key);
    for (const key of pseudonymKeys) batch.del(key);
    await call((cb) => batch.write({ sync: false }, cb));
    const sorted = pseudonymKeys.sort(Buffer.compare);
    await call((cb) => this.db.compactRange(sorted[0], sorted[sorted.length - 1], cb));
    return queued.length;
  }

  /** Forgets everything, for a full restore. */
  async clear(): Promise<void> {
    await call((cb) => this.db.clear({}, cb));
  }

  async close(): Promise<void> {
    await call((cb) => this.db.close(cb));
  }
}
