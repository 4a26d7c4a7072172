// Reads keys-topic partitions into key stores (changelog restore). One long-lived consumer per process,
// in a group of its own so that it sees every partition. A partition is paused until a task asks for
// it, then read from the store's checkpoint, read_committed (aborted key records of a crashed
// transaction are never applied): up to a target offset (restore), or on and on (follow: the
// decryptor, whose keys are written by someone else while it runs).
//
// Anyone with write access can put any bytes on the keys topic, and a record that fails to apply would
// stop its partition for good (every retry reads it again). So no record is refused: a value this build
// cannot read (malformed, or of a later format) is kept as the subject's last value, opaque, exactly as
// compaction will keep it, so a kept and a wiped state dir agree; the keys give it to no record (it does
// not unwrap: those records are dead-lettered "key unavailable") and the encryptor never replaces it
// with a new key. A value under no subject is skipped. Both are reported (invalid-key-records.ts).
import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { FORGOTTEN_AT_HEADER, headerText } from '../wire/headers.js';
import { CONSUMER_RETRY } from '../kafka/client.js';
import { wrappedKeyProblem } from '../wire/wrapped-key.js';
import type { Logger } from '../observability/logger.js';
import type { InvalidKeyRecord, OnInvalidKeyRecord } from './invalid-key-records.js';
import type { KeyChange } from './key-store.js';
import type { PartitionKeys } from './partition-keys.js';

export interface KeysTopicReaderOptions {
  /** Each record this build cannot read, once its batch is applied to the store (see invalid-key-records.ts). */
  onInvalid?: OnInvalidKeyRecord;
}

interface Waiter {
  offset: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Tracked {
  keys: PartitionKeys;
  /** Everything before this offset is applied and committed to the store. */
  position: number;
  /** Restore: stop here (exclusive). Follow: undefined. */
  until?: number;
  /** Everything before this offset is applied, or handed to the store write in progress (restore). */
  read: number;
  applied: number;
  waiters: Waiter[];
  onProgress?: (applied: number, position: number) => void;
  /** Restore: the store write in progress, if any; it never rejects (a failure finishes the partition). */
  writing?: Promise<void>;
}

export class KeysTopicReader {
  private readonly consumer: Consumer;
  private readonly tracked = new Map<number, Tracked>();
  private running = false;
  /** Rejects when its consumer crashed for good: no restore or catch-up can finish after that. */
  readonly failed: Promise<never>;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    groupIdPrefix: string,
    private readonly logger: Logger,
    private readonly options: KeysTopicReaderOptions = {},
  ) {
    this.consumer = kafka.consumer({
      groupId: `${groupIdPrefix}.keys-reader.${randomUUID()}`,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      // a restore writes each fetched batch to RocksDB at once and reports progress per batch: large
      // fetches read a keys partition of a million subjects (some 100 MB) in a few dozen of them
      maxBytesPerPartition: 4 * 1024 * 1024,
      retry: CONSUMER_RETRY,
    });
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // A batch read_committed filtered to nothing (transaction markers, aborted records) never
      // reaches onBatch: move past it here. (Offsets of a compacted topic have gaps, so a batch
      // starting beyond the position is normal.)
      if (payload.topic !== this.topic || payload.batchSize !== 0) return;
      const tracked = this.tracked.get(payload.partition);
      if (!tracked) return;
      const next = Number(payload.lastOffset) + 1;
      tracked.read = Math.max(tracked.read, next);
      // (behind a store write in progress: the position never passes records not yet in the store)
      if (tracked.writing) tracked.writing = tracked.writing.then(() => this.advance(payload.partition, tracked, next));
      else this.advance(payload.partition, tracked, next);
    });
    this.failed = new Promise<never>((_, reject) => {
      this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
        if (payload.restart || !this.running) return;
        for (const partition of [...this.tracked.keys()]) this.finish(partition, payload.error);
        reject(payload.error);
      });
    });
    this.failed.catch(() => undefined); // observed by the processor
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({ autoCommit: false, eachBatch: (payload) => this.onBatch(payload) });
    this.running = true;
  }

  /** Reads `partition` from `fromOffset` up to `toOffset` (exclusive) into `keys`, committing to its store. */
  restore(partition: number, keys: PartitionKeys, fromOffset: number, toOffset: number, onProgress?: (applied: number, position: number) => void): Promise<void> {
    if (fromOffset >= toOffset) return Promise.resolve();
    this.track(partition, { keys, position: fromOffset, read: fromOffset, until: toOffset, applied: 0, waiters: [], onProgress });
    return this.caughtUp(partition, toOffset);
  }

  /** Keeps reading `partition` into `keys` from `fromOffset` as key records arrive, until unfollow(). */
  follow(partition: number, keys: PartitionKeys, fromOffset: number): void {
    this.track(partition, { keys, position: fromOffset, read: fromOffset, applied: 0, waiters: [] });
  }

  /** Resolves once every key record before `offset` of a followed or restoring partition is applied. */
  caughtUp(partition: number, offset: number): Promise<void> {
    const tracked = this.tracked.get(partition);
    if (!tracked) return Promise.reject(new Error(`keys partition ${partition} is not being read`));
    if (tracked.position >= offset) return Promise.resolve();
    return new Promise((resolve, reject) => tracked.waiters.push({ offset, resolve, reject }));
  }

  /** Stops reading a partition into `keys` (its task was closed); pending waits fail. */
  unfollow(partition: number, keys: PartitionKeys): void {
    if (this.tracked.get(partition)?.keys === keys) this.finish(partition, new Error(`keys partition ${partition} is no longer read`));
  }

  private track(partition: number, tracked: Tracked): void {
    if (!this.running) throw new Error('the keys topic reader is not started');
    // a task reopened after a failed batch takes over from the one it replaces
    if (this.tracked.has(partition)) this.finish(partition, new Error(`keys partition ${partition} was taken over`));
    this.tracked.set(partition, tracked);
    this.consumer.seek({ topic: this.topic, partition, offset: String(tracked.position) });
    this.consumer.resume([{ topic: this.topic, partitions: [partition] }]);
  }

  private async onBatch({ batch }: EachBatchPayload): Promise<void> {
    const tracked = this.tracked.get(batch.partition);
    if (!tracked) {
      this.consumer.pause([{ topic: this.topic, partitions: [batch.partition] }]);
      return;
    }
    try {
      const invalid: InvalidKeyRecord[] = [];
      // A restore writes the records straight to the store, as views of the fetched bytes (the store
      // copies them); following the topic stages them, so each is copied out of the fetch it came in.
      const restoring = tracked.until !== undefined;
      const changes: KeyChange[] = [];
      for (const message of batch.messages) {
        if (Number(message.offset) < tracked.read) continue; // fetched before a seek, or already read
        if (tracked.until !== undefined && Number(message.offset) >= tracked.until) break;
        if (!message.key || message.key.length === 0) {
          // the segment-roll marker (a tombstone under the empty key) is not a subject; a value there is junk
          if (message.value !== null) invalid.push({ partition: batch.partition, offset: message.offset, kind: 'key', reason: 'a keys-topic value under an empty record key (no subject)' });
          continue;
        }
        const key = restoring ? message.key : new Uint8Array(message.key);
        const value = message.value && (restoring ? message.value : new Uint8Array(message.value));
        const problem = value && wrappedKeyProblem(value);
        if (problem) invalid.push({ partition: batch.partition, offset: message.offset, subject: new Uint8Array(message.key), ...problem });
        const forgottenAt = forgottenAtOf(message);
        // (a pseudonymous value names its subject sealed: it is that subject's, its record key a pseudonym)
        const subject = value && !problem ? tracked.keys.pseudonymousSubject(value, key) : undefined;
        if (subject) changes.push({ subject, wrapped: value!, forgottenAt, pseudonym: key });
        else changes.push(value ? { subject: key, wrapped: value, forgottenAt } : { subject: key, forgottenAt });
        tracked.applied++;
      }
      const last = Number(batch.lastOffset()) + 1;
      const next = tracked.until !== undefined ? Math.min(last, tracked.until) : last;
      tracked.read = Math.max(tracked.read, next);
      if (restoring) {
        // The batch is written while the next one is fetched and read (at most one write behind it):
        // a restore then waits on the broker and on RocksDB at once, not in turn.
        const previous = tracked.writing;
        const applied = tracked.applied;
        tracked.writing = (previous ?? Promise.resolve()).then(() => this.restoreWrite(batch.partition, tracked, changes, next, applied, invalid));
        await previous;
        return;
      }
      await tracked.keys.applyRecords(changes);
      await tracked.keys.commit(next);
      // (after the commit: a batch that failed and is read again is reported once)
      if (invalid.length > 0) this.reportInvalid(invalid);
      tracked.onProgress?.(tracked.applied, next);
      this.advance(batch.partition, tracked, next);
    } catch (err) {
      tracked.keys.rollback();
      this.finish(batch.partition, err as Error);
    }
  }

  /** Writes a restored batch to the store, then moves the position past it; a failure finishes the partition. */
  private async restoreWrite(partition: number, tracked: Tracked, records: KeyChange[], next: number, applied: number, invalid: InvalidKeyRecord[]): Promise<void> {
    if (this.tracked.get(partition) !== tracked) return; // finished meanwhile (failed, taken over, stopped)
    try {
      await tracked.keys.restore(records, next);
    } catch (err) {
      if (this.tracked.get(partition) === tracked) this.finish(partition, err as Error);
      return;
    }
    if (invalid.length > 0) this.reportInvalid(invalid);
    tracked.onProgress?.(applied, next);
    this.advance(partition, tracked, next);
  }

  /** Reporting is never a reason to stop reading (its subject reference may need the master key's provider). */
  private reportInvalid(records: InvalidKeyRecord[]): void {
    try {
      for (const record of records) this.options.onInvalid?.(record);
    } catch (err) {
      this.logger.warn({ keysTopic: this.topic, error: (err as Error).message }, 'unreadable keys-topic values could not be reported');
    }
  }

  private advance(partition: number, tracked: Tracked, nextOffset: number): void {
    if (this.tracked.get(partition) !== tracked) return; // replaced meanwhile (the task was reopened)
    tracked.position = Math.max(tracked.position, tracked.until !== undefined ? Math.min(nextOffset, tracked.until) : nextOffset);
    const ready = tracked.waiters.filter((w) => tracked.position >= w.offset);
    tracked.waiters = tracked.waiters.filter((w) => tracked.position < w.offset);
    for (const waiter of ready) waiter.resolve();
    if (tracked.until !== undefined && tracked.position >= tracked.until) {
      this.logger.debug({ partition, records: tracked.applied }, 'keys partition restored');
      this.finish(partition);
    }
  }

  private finish(partition: number, error?: Error): void {
    const tracked = this.tracked.get(partition);
    this.tracked.delete(partition);
    this.consumer.pause([{ topic: this.topic, partitions: [partition] }]);
    for (const waiter of tracked?.waiters ?? []) waiter.reject(error ?? new Error(`keys partition ${partition} is no longer read`));
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const partition of [...this.tracked.keys()]) this.finish(partition, new Error('keys topic reader stopped'));
    await this.consumer.disconnect();
  }
}

/** When a key record says its subject was last forgotten: a tombstone's own time, or a key record's shredder.forgotten-at. */
export function forgottenAtOf(message: Pick<KafkaMessage, 'value' | 'timestamp' | 'headers'>): number | undefined {
  return message.value === null ? Number(message.timestamp) : forgottenAtHeader(message.headers);
}

/**
 * The forget time a key record carries (shredder.forgotten-at), if it is a plausible time: a header
 * that is not a positive finite number is ignored, not turned into a forget time that would make every
 * later record of the subject born shredded.
 */
function forgottenAtHeader(headers: Parameters<typeof headerText>[0]): number | undefined {
  const at = Number(headerText(headers, FORGOTTEN_AT_HEADER));
  return Number.isFinite(at) && at > 0 ? at : undefined;
}
