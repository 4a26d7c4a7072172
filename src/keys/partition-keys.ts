// The keys of one keys-topic partition as the processor sees them: the RocksDB store, a bounded cache
// of unwrapped keys, and the changes of the transaction in progress. Changes reach the store only
// after their transaction has committed (commit()); an aborted transaction leaves no trace (rollback()).
import type { AlgorithmId } from '../crypto/aead-algorithms.js';
import { PSEUDONYM_BYTES, pseudonymOf } from '../wire/wrapped-key.js';
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
  /** Its record key: the subject id, or the pseudonym of a pseudonymous key generation (SHREDDER_RECORD_KEYS=pseudonym). */
  recordKey: Uint8Array;
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

export interface PartitionKeysOptions {
  /** Subjects whose keys the cache holds at most (SHREDDER_KEY_CACHE_SUBJECTS). */
  cacheSize?: number;
  /** New keys are pseudonymous (SHREDDER_RECORD_KEYS=pseudonym): written under a pseudonym, as v2 values. */
  pseudonymous?: boolean;
  /**
   * How long a destroyed generation's pseudonym still names its subject here (ms): the decryptor keeps
   * it for the erasure deadline, so a forget marker read after its tombstone is given back its subject;
   * the encryptor, which never reads a pseudonym, drops it at once.
   */
  retiredPseudonymMs?: number;
}

/** A pseudonym's map key. */
const pseudonymId = (pseudonym: Uint8Array): string => Buffer.from(pseudonym.buffer, pseudonym.byteOffset, pseudonym.byteLength).toString('latin1');

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
  /** The subjects of the pseudonyms of staged changes, by pseudonymId. */
  private readonly pendingPseudonyms = new Map<string, Uint8Array>();
  /** Pseudonyms looked up (their subjects, or null: none), by pseudonymId. */
  private readonly pseudonyms: LruCache<string, Uint8Array | null>;
  /** False once the store is known to hold no pseudonym (see checkForPseudonyms), until one is staged or restored. */
  private mayHavePseudonyms = true;
  /** When the store's queue of kept pseudonyms is next looked at (see deleteExpiredPseudonyms). */
  private nextPseudonymSweep = 0;
  private readonly pseudonymous: boolean;
  private readonly retiredPseudonymMs: number;

  constructor(
    readonly partition: number,
    readonly store: KeyStore,
    private readonly masterKey: Keyring,
    options: PartitionKeysOptions | number = {},
  ) {
    const { cacheSize = DEFAULT_KEY_CACHE_SUBJECTS, pseudonymous = false, retiredPseudonymMs = 0 } = typeof options === 'number' ? { cacheSize: options } : options;
    this.cache = new LruCache(cacheSize);
    this.pseudonyms = new LruCache(cacheSize);
    this.pseudonymous = pseudonymous;
    this.retiredPseudonymMs = retiredPseudonymMs;
  }

  /** Whether new keys are pseudonymous (SHREDDER_RECORD_KEYS=pseudonym). */
  get pseudonymousKeys(): boolean {
    return this.pseudonymous;
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
    const key = Keyring.newDataKey(algorithm, this.pseudonymous);
    const wrapped = this.masterKey.wrap(subject, key);
    this.stage(subject, { wrapped, forgottenAt: known.forgottenAt, key }, subjectKey, true, key.pseudonym);
    return { key, record: { subject, recordKey: key.pseudonym ?? subject, value: wrapped, forgottenAt: known.forgottenAt, timestamp: now } };
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
    const keys = Keyring.newDataKeys(subjects.length, algorithm, this.pseudonymous);
    const values = this.masterKey.wrapAll(subjects, keys); // (views of one buffer: not cached, they go with the batch)
    const records = subjects.map((subject, i): KeyRecord => {
      const { forgottenAt } = known[i];
      const { pseudonym } = keys[i];
      this.stage(subject, { wrapped: values[i], forgottenAt, key: keys[i] }, subjectKeys[i], false, pseudonym);
      return { subject, recordKey: pseudonym ?? subject, value: values[i], forgottenAt, timestamp: now };
    });
    return { keys, records };
  }

  /**
   * Destroys the subject's key, pending until commit(): the tombstone to write, under the record key of
   * the subject's live value (its pseudonym, or its subject id). With no live value, pseudonymous keys
   * put the tombstone under a fresh random pseudonym, which names nobody. Requires load().
   */
  forget(subject: Uint8Array, at: number, subjectKey?: string): KeyRecord {
    const { wrapped } = this.known(subject, subjectKey);
    // (a value shaped like a pseudonymous one is under its pseudonym only if it is this subject's: one
    // that is not, junk, was kept under the subject id, and the tombstone must go where it is)
    const candidate = wrapped && pseudonymOf(wrapped);
    const opened = candidate && this.pseudonymousSubject(wrapped!, candidate);
    const pseudonym = opened && Buffer.from(opened).equals(subject) ? candidate : undefined;
    this.stage(subject, { forgottenAt: at }, subjectKey, true, pseudonym);
    const recordKey = pseudonym ?? (wrapped || !this.pseudonymous ? subject : Keyring.newPseudonym());
    return { subject, recordKey, value: null, forgottenAt: at, timestamp: at };
  }

  /**
   * The subject id a pseudonymous keys-topic value (v2) read under `recordKey` carries, or undefined
   * when it is not one this keyring opens (junk, forged, another master key's): the reader then keeps
   * it under its record key, as any value it cannot read. A provider that is down throws.
   */
  pseudonymousSubject(value: Uint8Array, recordKey: Uint8Array): Uint8Array | undefined {
    return this.masterKey.sealedSubject(value, recordKey);
  }

  /**
   * The subjects the given record keys stand for when they are pseudonyms (undefined where not): from
   * staged changes, the pseudonyms looked up before, then one store read. Only keys of a pseudonym's
   * length are looked up. Undefined, not a promise, when no read was needed.
   */
  resolvePseudonyms(recordKeys: readonly (Uint8Array | null | undefined)[]): (Uint8Array | undefined)[] | Promise<(Uint8Array | undefined)[]> {
    const subjects = new Array<Uint8Array | undefined>(recordKeys.length);
    // (a store that never held a pseudonym, subject ids as record keys: nothing to look up, not even
    // subject ids that happen to be a pseudonym's length)
    if (!this.mayHavePseudonyms) return subjects;
    let toRead: number[] | undefined;
    for (let i = 0; i < recordKeys.length; i++) {
      const recordKey = recordKeys[i];
      if (!recordKey || recordKey.length !== PSEUDONYM_BYTES) continue;
      const pid = pseudonymId(recordKey);
      const found = this.pendingPseudonyms.get(pid) ?? this.pseudonyms.get(pid);
      if (found === undefined) (toRead ??= []).push(i);
      else subjects[i] = found ?? undefined;
    }
    if (!toRead) return subjects;
    const reading = toRead;
    return this.store.pseudonymSubjects(reading.map((i) => recordKeys[i]!)).then((read) => {
      reading.forEach((i, k) => {
        const pid = pseudonymId(recordKeys[i]!);
        // (staged meanwhile: newer than what the store had)
        const subject = this.pendingPseudonyms.get(pid) ?? read[k];
        subjects[i] = subject;
        this.pseudonyms.set(pid, subject ?? null);
      });
      return subjects;
    });
  }

  /**
   * Gives each tombstone read under a pseudonym its subject (its pseudonym kept with it), from the
   * values before it in `changes`, staged changes, or the store; a tombstone under anything else is its
   * record key's, as it always was.
   */
  private async withTombstonesResolved(changes: KeyChange[]): Promise<KeyChange[]> {
    const candidates = changes.filter((c) => !c.wrapped && !c.pseudonym && c.subject.length === PSEUDONYM_BYTES);
    if (candidates.length === 0) return changes;
    const inBatch = new Map<string, Uint8Array>();
    for (const change of changes) if (change.pseudonym && change.wrapped) inBatch.set(pseudonymId(change.pseudonym), change.subject);
    const unresolved = candidates.filter((c) => !inBatch.has(pseudonymId(c.subject)));
    const resolved = await this.resolvePseudonyms(unresolved.map((c) => c.subject));
    const fromStore = new Map(unresolved.map((c, i) => [c, resolved[i]]));
    for (const change of candidates) {
      const subject = inBatch.get(pseudonymId(change.subject)) ?? fromStore.get(change);
      if (!subject) continue;
      change.pseudonym = change.subject;
      change.subject = subject;
    }
    return changes;
  }

  /**
   * Writes key records read back from the keys topic straight to the store, with the keys-topic offset
   * they bring it to, in one atomic write: a task's restore, before any batch uses these keys. It needs
   * neither the cache nor a transaction's changes, and keeping the records out of both (no map entry,
   * no copy, no string per subject) is most of what makes a restore as fast as reading the topic.
   */
  async restore(records: KeyChange[], nextKeysOffset: number): Promise<void> {
    if (this.pending.size > 0) throw new Error('keys cannot be restored while a transaction has changes');
    for (const record of await this.withTombstonesResolved(records)) {
      this.keepRetired(record);
      if (record.pseudonym) this.mayHavePseudonyms = true;
    }
    await this.store.apply(records, { offset: nextKeysOffset, savedAt: Date.now() });
    this.pseudonyms.clear();
    // (nothing is cached before a task opens; were anything cached, it would now be stale, and so
    // would a cache kept beside this one: every subject counts as changed)
    this.cache.clear();
    this.pinned = undefined;
    this.changes++;
    this.changeLog = [];
    this.changeLogFrom = this.changes;
  }

  /** Applies key records read back from the keys topic (following the topic), pending until commit(); their bytes are kept as they are. */
  async applyRecords(changes: KeyChange[]): Promise<void> {
    for (const { subject, wrapped, forgottenAt, pseudonym } of await this.withTombstonesResolved(changes)) this.applyRecord(subject, wrapped ?? null, forgottenAt, pseudonym);
  }

  /** Applies one key change of a subject (a re-wrapped value, a record read back), pending until commit(). `pseudonym`: see KeyChange. */
  applyRecord(subject: Uint8Array, value: Uint8Array | null, forgottenAt: number | undefined, pseudonym?: Uint8Array): void {
    this.stage(subject, value ? { wrapped: value, forgottenAt } : { forgottenAt }, undefined, true, pseudonym);
  }

  /** Stages a change; `cached` false: kept with the change only (see createKeys), an older cached entry dropped. `pseudonym`: see KeyChange. */
  private stage(subject: Uint8Array, known: Known, key: string = id(subject), cached = true, pseudonym?: Uint8Array): void {
    this.changed(key);
    const change: KeyChange & Known = { subject, wrapped: known.wrapped, forgottenAt: known.forgottenAt, key: known.key, pseudonym };
    this.keepRetired(change);
    if (pseudonym) {
      this.pendingPseudonyms.set(pseudonymId(pseudonym), subject);
      this.mayHavePseudonyms = true;
    }
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
    const changes = [...this.pending.values()];
    await this.store.apply(changes, { offset: checkpoint, savedAt: Date.now() });
    this.pending.clear();
    this.pinned = undefined;
    for (const [pid, subject] of this.pendingPseudonyms) this.pseudonyms.set(pid, subject);
    this.pendingPseudonyms.clear();
    for (const change of changes) if (change.pseudonym && !change.wrapped && change.pseudonymKeptUntil === undefined) this.pseudonyms.delete(pseudonymId(change.pseudonym));
    await this.deleteExpiredPseudonyms();
  }

  /** Forgets the changes of an aborted transaction (the store never saw them). */
  rollback(): void {
    for (const key of this.pending.keys()) {
      this.cache.delete(key);
      this.changed(key);
    }
    this.pending.clear();
    this.pendingPseudonyms.clear();
    this.pinned = undefined;
  }

  /** A destroyed generation's pseudonym (a change without a value) is kept for retiredPseudonymMs from its forget, or goes with the change. */
  private keepRetired(change: KeyChange): void {
    if (!change.pseudonym || change.wrapped || this.retiredPseudonymMs <= 0) return;
    change.pseudonymKeptUntil = (change.forgottenAt ?? Date.now()) + this.retiredPseudonymMs;
  }

  /** Notes whether the store holds any pseudonym: when none, record keys are not looked up as pseudonyms until one comes (a task calls it once restored). */
  async checkForPseudonyms(): Promise<void> {
    this.mayHavePseudonyms = await this.store.hasPseudonyms();
  }

  /**
   * Removes the pseudonyms of destroyed generations whose retention (retiredPseudonymMs) has passed:
   * when a task opens (what an earlier run left), and then at most every few seconds, at a commit.
   */
  async deleteExpiredPseudonyms(now = Date.now()): Promise<void> {
    if (this.retiredPseudonymMs <= 0 || now < this.nextPseudonymSweep) return;
    this.nextPseudonymSweep = now + Math.min(60_000, Math.max(1000, this.retiredPseudonymMs / 10));
    if ((await this.store.deleteExpiredPseudonyms(now)) > 0) this.pseudonyms.clear();
  }

}
