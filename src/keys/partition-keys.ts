// The keys of one keys-topic partition as the processor sees them: the RocksDB store, a bounded cache
// of unwrapped keys, and the changes of the transaction in progress. Changes reach the store only
// after their transaction has committed (commit()); an aborted transaction leaves no trace (rollback()).
import type { AlgorithmId } from '../crypto/aead-algorithms.js';
import { type DataKey, Keyring } from './keyring.js';
import type { KeyChange, KeyStore, SubjectEntry } from './key-store.js';
import { LruCache } from './lru-cache.js';
import { subjectId } from './subject-ids.js';

interface Known extends SubjectEntry {
  key?: DataKey;
}

/** What a transaction must write to the keys topic for a key change. */
export interface KeyRecord {
  subject: Uint8Array;
  /** The 74-byte wrapped key, or null for a tombstone. */
  value: Uint8Array | null;
  forgottenAt?: number;
  timestamp: number;
}

/** A subject's map key (see subject-ids.ts); callers that look a subject up several times in a batch compute it once. */
export { subjectId };
const id = subjectId;

/** Subjects whose keys a partition keeps in memory by default (SHREDDER_KEY_CACHE_SUBJECTS). */
export const DEFAULT_KEY_CACHE_SUBJECTS = 100_000;

/** Changes kept in the change log (see changesSince); past it, the older half is dropped. */
const CHANGE_LOG_LIMIT = 8192;

export class PartitionKeys {
  private readonly cache: LruCache<string, Known>;
  private readonly pending = new Map<string, KeyChange>();
  /**
   * The entries of the last load of more subjects than the cache safely holds (more than half of it):
   * its own reads and hits would evict each other before the batch looks them up. Cleared when the
   * store changes (commit, rollback, restore), so never staler than the store.
   */
  private pinned: Map<string, Known> | undefined;
  private readsInFlight = 0;
  /** Subjects changed while a store read was in flight (see read()). */
  private readonly changedDuringReads = new Set<string>();
  private changes = 0;
  /** The subjects of the latest changes (see changesSince), oldest first, and the change count before the first. */
  private changeLog: string[] = [];
  private changeLogFrom = 0;

  constructor(
    readonly partition: number,
    readonly store: KeyStore,
    private readonly masterKey: Keyring,
    cacheSize = DEFAULT_KEY_CACHE_SUBJECTS,
  ) {
    this.cache = new LruCache(cacheSize);
  }

  /** How many subjects' keys the cache holds at most. */
  get cacheCapacity(): number {
    return this.cache.capacity;
  }

  /**
   * Brings the given subjects into memory with one store read for those not cached (undefined entries
   * are skipped). Returns
   * undefined, not a promise, when all are cached: a warm batch then never yields the event loop.
   */
  load(subjects: readonly (Uint8Array | undefined)[], ids: readonly (string | undefined)[] = subjects.map((s) => s && id(s))): Promise<void> | undefined {
    const missing: Uint8Array[] = [];
    const missingIds: string[] = [];
    let seen: Set<string> | undefined; // (made at the first miss: a warm batch has none)
    const pinned = subjects.length > this.cache.capacity / 2 ? new Map<string, Known>() : undefined;
    if (pinned) this.pinned = pinned;
    for (let i = 0; i < subjects.length; i++) {
      const subject = subjects[i];
      const key = ids[i];
      if (subject === undefined || key === undefined) continue; // (a hole: a record without a subject)
      // (the cache first: it holds nearly every subject, pending ones included unless evicted; get() marks it used)
      const cached = this.cache.get(key);
      if (cached !== undefined) {
        pinned?.set(key, cached);
        continue;
      }
      if (this.pending.has(key) || seen?.has(key)) continue;
      (seen ??= new Set()).add(key);
      missing.push(subject);
      missingIds.push(key);
    }
    if (missing.length === 0) return undefined;
    return this.read(missing, missingIds, pinned);
  }

  /**
   * Reads subjects from the store into the cache. A key record applied while the store was read (the
   * decryptor follows the keys topic) is newer than what the read returns: it stays in the cache, or,
   * if it was already committed and evicted meanwhile, the subject is read again.
   */
  private async read(subjects: Uint8Array[], ids: string[], pinned: Map<string, Known> | undefined): Promise<void> {
    this.readsInFlight++;
    try {
      let toRead = subjects;
      let toReadIds = ids;
      for (let attempt = 0; toRead.length > 0; attempt++) {
        const entries = await this.store.get(toRead);
        const again: Uint8Array[] = [];
        const againIds: string[] = [];
        toRead.forEach((subject, i) => {
          const key = toReadIds[i];
          if (this.pending.has(key) || this.cache.peek(key) !== undefined) return;
          // changed and since committed (no longer pending): the store now has it, read it again
          if (attempt === 0 && this.changedDuringReads.has(key)) {
            again.push(subject);
            againIds.push(key);
          } else {
            const known: Known = entries[i] ?? {};
            this.cache.set(key, known);
            pinned?.set(key, known);
          }
        });
        toRead = again;
        toReadIds = againIds;
      }
    } finally {
      if (--this.readsInFlight === 0) this.changedDuringReads.clear();
    }
  }

  private known(subject: Uint8Array, key: string = id(subject)): Known {
    // (a pending change is in the cache too, unless evicted since)
    const known = this.cache.peek(key) ?? this.pending.get(key) ?? this.pinned?.get(key);
    if (!known) throw new Error('subject not loaded: call load() first');
    return known;
  }

  /** The subject's live data key (unwrapped on first use), if it has one. Requires load(). */
  liveKey(subject: Uint8Array, subjectKey?: string): DataKey | undefined {
    return this.lookup(subject, subjectKey).key;
  }

  /** What is known of the subject now (its live key's keys-topic value, its last forget), staged changes included. Requires load(). */
  entry(subject: Uint8Array, subjectKey?: string): SubjectEntry {
    const { wrapped, forgottenAt } = this.known(subject, subjectKey);
    return { wrapped, forgottenAt };
  }

  /** When the subject was last forgotten, if ever. Requires load(). */
  forgottenAt(subject: Uint8Array, subjectKey?: string): number | undefined {
    return this.known(subject, subjectKey).forgottenAt;
  }

  /** Both of the above in one lookup (the hot path). Requires load(). */
  lookup(subject: Uint8Array, subjectKey?: string): { key?: DataKey; forgottenAt?: number } {
    const known = this.known(subject, subjectKey);
    if (known.wrapped) known.key ??= this.masterKey.unwrap(subject, known.wrapped);
    return known;
  }

  /** A new live key for a subject that has none, pending until commit(). */
  createKey(subject: Uint8Array, algorithm: AlgorithmId, now: number, subjectKey?: string): { key: DataKey; record: KeyRecord } {
    const known = this.known(subject, subjectKey);
    if (known.wrapped) throw new Error('the subject already has a live key'); // one live key per subject, always
    const key = Keyring.newDataKey(algorithm);
    const wrapped = this.masterKey.wrap(subject, key);
    this.stage(subject, { wrapped, forgottenAt: known.forgottenAt, key }, subjectKey);
    return { key, record: { subject, value: wrapped, forgottenAt: known.forgottenAt, timestamp: now } };
  }

  /**
   * createKey() of each subject (none may have a live key, none may come twice), the keys wrapped in
   * one pass (Keyring.wrapAll): a batch of new subjects. The keys stay with their staged changes until
   * commit, but do not enter the cache: the caller keeps them where it uses them (the encryptor's
   * table of subjects ready for the sealing thread), and filling the cache with a backlog's new keys
   * made most of their cost (every cached key is a handful of objects the garbage collector carries
   * into its old generation). After the commit, a load() reads them from the store.
   */
  createKeys(subjects: readonly Uint8Array[], algorithm: AlgorithmId, now: number, subjectKeys: readonly string[] = subjects.map((s) => id(s))): { keys: DataKey[]; records: KeyRecord[] } {
    const known = subjects.map((subject, i) => this.known(subject, subjectKeys[i]));
    if (known.some((k) => k.wrapped)) throw new Error('a subject already has a live key'); // one live key per subject, always
    if (new Set(subjectKeys).size !== subjects.length) throw new Error('a subject comes twice');
    const keys = Keyring.newDataKeys(subjects.length, algorithm);
    const values = this.masterKey.wrapAll(subjects, keys); // (views of one buffer: not cached, they go with the batch)
    const records = subjects.map((subject, i): KeyRecord => {
      const { forgottenAt } = known[i];
      this.stage(subject, { wrapped: values[i], forgottenAt, key: keys[i] }, subjectKeys[i], false);
      return { subject, value: values[i], forgottenAt, timestamp: now };
    });
    return { keys, records };
  }

  /** Destroys the subject's key, pending until commit(): the tombstone to write. */
  forget(subject: Uint8Array, at: number): KeyRecord {
    this.stage(subject, { forgottenAt: at });
    return { subject, value: null, forgottenAt: at, timestamp: at };
  }

  /**
   * Writes key records read back from the keys topic straight to the store, with the keys-topic offset
   * they bring it to, in one atomic write: a task's restore, before any batch uses these keys. It needs
   * neither the cache nor a transaction's changes, and keeping the records out of both (no map entry,
   * no copy, no string per subject) is most of what makes a restore as fast as reading the topic.
   */
  async restore(records: readonly KeyChange[], nextKeysOffset: number): Promise<void> {
    if (this.pending.size > 0) throw new Error('keys cannot be restored while a transaction has changes');
    await this.store.apply(records, { offset: nextKeysOffset, savedAt: Date.now() });
    // (nothing is cached before a task opens; were anything cached, it would now be stale, and so
    // would a cache kept beside this one: every subject counts as changed)
    this.cache.clear();
    this.pinned = undefined;
    this.changes++;
    this.changeLog = [];
    this.changeLogFrom = this.changes;
  }

  /** Applies a key record read back from the keys topic (following the topic), pending until commit(). */
  applyRecord(subject: Uint8Array, value: Uint8Array | null, forgottenAt: number | undefined): void {
    this.stage(subject, value ? { wrapped: value, forgottenAt } : { forgottenAt });
  }

  /** Stages a change; `cached` false: kept with the change only (see createKeys), an older cached entry dropped. */
  private stage(subject: Uint8Array, known: Known, key: string = id(subject), cached = true): void {
    this.changed(key);
    const change: KeyChange & Known = { subject, wrapped: known.wrapped, forgottenAt: known.forgottenAt, key: known.key };
    this.pending.set(key, change);
    if (cached) this.cache.set(key, known);
    else this.cache.delete(key);
    if (this.readsInFlight > 0) this.changedDuringReads.add(key);
  }

  /**
   * Counts the changes of any subject's key or forget time (staged, or rolled back): what a cache of
   * subjects' keys kept beside this one compares to know it is still current.
   */
  get generation(): number {
    return this.changes;
  }

  /**
   * The subjects (map keys) changed since `generation` (a subject may come more than once), or
   * undefined when the log no longer reaches back that far: then any subject may have changed.
   */
  changesSince(generation: number): readonly string[] | undefined {
    if (generation < this.changeLogFrom) return undefined;
    return this.changeLog.slice(generation - this.changeLogFrom);
  }

  private changed(key: string): void {
    this.changes++;
    this.changeLog.push(key);
    if (this.changeLog.length > CHANGE_LOG_LIMIT) {
      const dropped = this.changeLog.length - CHANGE_LOG_LIMIT / 2;
      this.changeLog = this.changeLog.slice(dropped);
      this.changeLogFrom += dropped;
    }
  }

  get hasPendingChanges(): boolean {
    return this.pending.size > 0;
  }

  /** Writes the committed changes to the store, with the keys-topic offset they bring it to. */
  async commit(nextKeysOffset: number | undefined): Promise<void> {
    if (this.pending.size === 0 && nextKeysOffset === undefined) return;
    const checkpoint = nextKeysOffset ?? (await this.store.checkpoint())?.offset ?? 0;
    await this.store.apply([...this.pending.values()], { offset: checkpoint, savedAt: Date.now() });
    this.pending.clear();
    this.pinned = undefined;
  }

  /** Forgets the changes of an aborted transaction (the store never saw them). */
  rollback(): void {
    for (const key of this.pending.keys()) {
      this.cache.delete(key);
      this.changed(key);
    }
    this.pending.clear();
    this.pinned = undefined;
  }
}
