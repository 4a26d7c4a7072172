// Master-key rotation: once SHREDDER_MASTER_KEY_ID names a new master key, new keys are wrapped under
// it at once, and this re-wraps, in the background, every key of the owned keys partitions that
// another master key wrapped: a new keys-topic value for the same subject, same key id and data key,
// in a transaction of the partition's task. Each slice runs inside the task's exclusive section, so
// it is serialized with the partition's record batches, and it re-reads each subject's state there:
// a key that a forget destroyed is never written back (and a forget after a re-wrap is a tombstone
// after it in the keys topic, so compaction keeps the tombstone). It also counts, per partition, the
// keys each master key id wraps (the shredder_keys_by_master_key metric).
//
// A value it cannot read is never re-wrapped, and never stops a slice: one of a later format (or
// malformed) is left alone as every reader leaves it, and one that does not unwrap (forged, copied from
// another subject) is skipped, said once, and left for its subject's records to be dead-lettered.
import { isRecordError } from '../errors/shredder-errors.js';
import type { Keyring } from '../keys/keyring.js';
import type { KeyRecord } from '../keys/partition-keys.js';
import { subjectId } from '../keys/subject-ids.js';
import { commitTransaction } from '../kafka/transactions.js';
import type { Logger, SubjectRef } from '../observability/logger.js';
import type { PartitionTask } from '../processor/partition-task.js';
import { pseudonymOf, wrappedMasterKeyId } from '../wire/wrapped-key.js';
import { keyRecordMessage } from './output-records.js';

export interface KeyRewrapperOptions {
  keyring: Keyring;
  keysTopic: string;
  /** Keys re-wrapped a second at most (SHREDDER_REWRAP_KEYS_PER_SECOND), over all partitions. */
  keysPerSecond: number;
  /** The tasks of the owned partitions whose keys are restored. */
  openTasks: () => Promise<PartitionTask[]>;
  /** After a slice of a partition's keys was re-wrapped and committed. */
  onRewrapped?: (partition: number, keys: number) => void;
  /** After a whole pass over a partition's store: how many live keys each master key id wraps there. */
  onCounted?: (partition: number, byMasterKeyId: ReadonlyMap<number, number>) => void;
  logger: Logger;
  /** The logs' subject reference, for a key that does not unwrap. */
  subjectRef?: SubjectRef;
  /** How often a slice runs (default 1 s): the rate is kept per interval. */
  intervalMs?: number;
  /** A partition found with nothing to re-wrap is walked again after this long (default 60 s). */
  idlePassMs?: number;
}

/** How far a walk over one partition's store has got. */
interface Pass {
  after?: Uint8Array;
  counts: Map<number, number>;
  /** Don't walk before this time (the last pass found nothing to do). */
  notBefore: number;
}

/** Store entries read per walk step. */
const SCAN_CHUNK = 1000;
/** Subjects remembered as not re-wrappable (their values do not unwrap); past it, the memory starts over. */
const UNWRAPPABLE_LIMIT = 10_000;

export class KeyRewrapper {
  private readonly passes = new Map<number, Pass>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Subjects whose key could not be re-wrapped (its master key is not in the keyring): said once each pass. */
  private warned = new Set<number>();
  /** Subjects (by partition and subject id) whose values failed to unwrap: not tried again until they change. */
  private readonly failed = new Map<string, Uint8Array>();

  constructor(private readonly options: KeyRewrapperOptions) {}

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((err: Error) => this.options.logger.warn({ error: err.message }, 'key re-wrap slice failed; it is retried'))
        .finally(() => this.schedule());
    }, this.options.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** One slice: up to the rate's share of keys, partition after partition. */
  async tick(): Promise<void> {
    let budget = Math.max(1, Math.round((this.options.keysPerSecond * (this.options.intervalMs ?? 1000)) / 1000));
    const tasks = await this.options.openTasks();
    const owned = new Set(tasks.map((t) => t.partition));
    for (const partition of [...this.passes.keys()]) if (!owned.has(partition)) this.passes.delete(partition);
    for (const task of tasks) {
      if (this.stopped || budget <= 0) return;
      budget -= await this.slice(task, budget);
    }
  }

  /** Walks on through the partition's store for up to `budget` keys to re-wrap, and re-wraps them. Returns how many. */
  private async slice(task: PartitionTask, budget: number): Promise<number> {
    const { keyring } = this.options;
    const now = Date.now();
    let pass = this.passes.get(task.partition);
    if (!pass) this.passes.set(task.partition, (pass = { counts: new Map(), notBefore: 0 }));
    if (now < pass.notBefore) return 0;
    const current = keyring.currentId;
    const held = new Set(keyring.ids);
    const candidates: Uint8Array[] = [];
    // (a bounded walk a slice, so a large store that needs nothing costs little each second)
    for (let read = 0; candidates.length < budget && read < 10 * SCAN_CHUNK; ) {
      const entries = await task.store.entriesAfter(pass.after, SCAN_CHUNK);
      read += entries.length;
      for (const entry of entries) {
        if (candidates.length >= budget) break;
        pass.after = entry.subject;
        if (!entry.wrapped) continue;
        let id = wrappedMasterKeyId(entry.wrapped);
        if (id === undefined) continue; // (not a key value this product wrote: left alone, as every reader refuses it)
        if (id !== current && held.has(id) && !this.failedBefore(task.partition, entry.subject, entry.wrapped)) {
          candidates.push(entry.subject);
          id = current; // (counted as it will stand)
        } else if (id !== current && !held.has(id) && !this.warned.has(id)) {
          this.warned.add(id);
          this.options.logger.warn({ partition: task.partition, masterKeyId: id, keyring: keyring.ids }, 'keys wrapped under a master key id not in the keyring cannot be re-wrapped (nor opened): add it to the keyring');
        }
        pass.counts.set(id, (pass.counts.get(id) ?? 0) + 1);
      }
      if (entries.length < SCAN_CHUNK) {
        // the pass is complete: report, and start over (later, when it found nothing to do)
        this.options.onCounted?.(task.partition, pass.counts);
        const idle = candidates.length === 0 && [...pass.counts.keys()].every((k) => k === current);
        this.passes.set(task.partition, { counts: new Map(), notBefore: idle ? Date.now() + (this.options.idlePassMs ?? 60_000) : 0 });
        this.warned.clear();
        break;
      }
    }
    return candidates.length > 0 ? this.rewrap(task, candidates) : 0;
  }

  /** Re-wraps the subjects' keys that another master key still wraps, in one transaction of the task. */
  private rewrap(task: PartitionTask, subjects: Uint8Array[]): Promise<number> {
    const { keyring, keysTopic } = this.options;
    return task.exclusive(async () => {
      if (this.stopped) return 0;
      const { keys, partition } = task;
      const loading = keys.load(subjects);
      if (loading) await loading;
      const records: KeyRecord[] = [];
      for (const subject of subjects) {
        // (as it stands now, after every batch before this: destroyed or re-wrapped meanwhile means nothing to do)
        const { wrapped, forgottenAt } = keys.entry(subject);
        if (!wrapped) continue;
        const id = wrappedMasterKeyId(wrapped);
        if (id === undefined || id === keyring.currentId) continue; // (unreadable values are left alone)
        let value: Uint8Array;
        try {
          value = keyring.rewrap(subject, wrapped);
        } catch (err) {
          if (!isRecordError(err)) throw err; // (a provider's fault: the slice is retried)
          this.remember(partition, subject, wrapped, (err as Error).message);
          continue;
        }
        // (a pseudonymous value keeps its pseudonym, its record key)
        const pseudonym = pseudonymOf(value);
        keys.applyRecord(subject, value, forgottenAt, pseudonym);
        records.push({ subject, recordKey: pseudonym ?? subject, value, forgottenAt, timestamp: Date.now() });
      }
      if (records.length === 0) return 0;
      try {
        const written = await commitTransaction(task.producer!, { topicMessages: [{ topic: keysTopic, messages: records.map((r) => keyRecordMessage(r, partition)) }] });
        await keys.commit(written.get(`${keysTopic}/${partition}`));
      } catch (err) {
        keys.rollback();
        throw err;
      }
      this.options.onRewrapped?.(partition, records.length);
      return records.length;
    });
  }

  /** Whether the subject's value, as it is now, failed to unwrap before. */
  private failedBefore(partition: number, subject: Uint8Array, wrapped: Uint8Array): boolean {
    const value = this.failed.get(`${partition}/${subjectId(subject)}`);
    return value !== undefined && Buffer.from(value).equals(wrapped);
  }

  /** Notes a value that does not unwrap: skipped from now on (until it changes), and said once. */
  private remember(partition: number, subject: Uint8Array, wrapped: Uint8Array, reason: string): void {
    if (this.failed.size >= UNWRAPPABLE_LIMIT) this.failed.clear();
    this.failed.set(`${partition}/${subjectId(subject)}`, Uint8Array.from(wrapped));
    this.options.logger.warn({ partition, subject: this.options.subjectRef?.(subject), reason }, 'a key that does not unwrap is not re-wrapped: its records are dead-lettered (key unavailable)');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
