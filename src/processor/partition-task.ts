// A task owns partition N of every input topic and of the keys topic (see co-partitioned-assigner):
// its transactional producer, whose id fences any older owner, and its key store, restored from the
// keys topic before the task processes a record.
import { join } from 'node:path';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { EndOffsets } from '../kafka/end-offsets.js';
import { KeyStore } from '../keys/key-store.js';
import type { KeysTopicReader } from '../keys/keys-topic-reader.js';
import type { Keyring } from '../keys/keyring.js';
import { PartitionKeys } from '../keys/partition-keys.js';
import type { Logger } from '../observability/logger.js';
import { closeAll } from '../errors/close-all.js';
import { messageOf } from '../errors/shredder-errors.js';

export interface TaskContext {
  kafka: Kafka;
  reader: KeysTopicReader;
  masterKey: Keyring;
  keysTopic: string;
  groupId: string;
  stateDir: string;
  /** Subjects whose keys the task keeps in memory at most (default: PartitionKeys'). */
  keyCacheSubjects?: number;
  /** See StreamProcessorOptions. */
  pseudonymousKeys?: boolean;
  retiredPseudonymMs?: number;
  /** How old a checkpoint may be before tombstones it has not seen could have been compacted away. */
  checkpointMaxAgeMs: number;
  /** Whether this task writes (encryptor, decryptor output) through a transactional producer. */
  transactional: boolean;
  /**
   * Whether the keys partition changes while the task runs (the decryptor: the encryptor writes it):
   * then it is followed after the restore, and catchUpKeys() waits for the keys of records just read.
   */
  followKeys?: boolean;
  /** Both end offsets of a partition: the restore reads to the last stable one, catchUpKeys needs both. */
  endOffsets: EndOffsets;
  logger: Logger;
  onHeartbeat?: () => Promise<void>;
  /** Restore progress: the fraction of the keys partition's offsets read so far (0 to 1). */
  onRestoreProgress?: (partition: number, fraction: number) => void;
}

export interface RestoreStats {
  partition: number;
  fromOffset: number;
  toOffset: number;
  records: number;
  fullRestore: boolean;
  ms: number;
}

/** How often a long restore logs its progress. */
export const RESTORE_LOG_INTERVAL_MS = 5000;

export function storeLocation(stateDir: string, groupId: string, keysTopic: string, partition: number): string {
  return join(stateDir, groupId, `${keysTopic}-${partition}`);
}

export class PartitionTask {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly partition: number,
    readonly producer: Producer | undefined,
    readonly keys: PartitionKeys,
    readonly store: KeyStore,
    readonly restoreStats: RestoreStats,
    private readonly context: TaskContext,
  ) {}

  static async open(partition: number, context: TaskContext): Promise<PartitionTask> {
    const { kafka, keysTopic, logger } = context;
    const started = Date.now();
    let producer: Producer | undefined;
    if (context.transactional) {
      producer = kafka.producer({
        transactionalId: `${context.groupId}-${partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: 60_000,
        createPartitioner: Partitioners.DefaultPartitioner, // murmur2, as the Java client (dead letters carry no partition)
        // The broker answers CONCURRENT_TRANSACTIONS while it still completes the previous
        // transaction (markers are written after EndTxn returns); kafkajs' default 300 ms first
        // back-off would stall every transaction that follows another. Retry fast instead.
        retry: { initialRetryTime: 5, retries: 15, maxRetryTime: 1000, factor: 0.2, multiplier: 1.6 },
      });
      // InitProducerId: fences a previous owner of this task and aborts its open transaction, so the
      // keys partition holds no pending records when we read it to its end below.
      await producer.connect();
    }
    const location = storeLocation(context.stateDir, context.groupId, keysTopic, partition);
    let store: KeyStore;
    try {
      store = await KeyStore.open(location);
    } catch (err) {
      await producer?.disconnect().catch(() => undefined); // (the store's error is the one to report)
      throw err;
    }
    try {
      const keys = new PartitionKeys(partition, store, context.masterKey, {
        cacheSize: context.keyCacheSubjects,
        pseudonymous: context.pseudonymousKeys,
        retiredPseudonymMs: context.retiredPseudonymMs,
      });
      const endOffset = await context.endOffsets.lastStable(keysTopic, partition);
      const checkpoint = await store.checkpoint();
      const usable =
        checkpoint !== undefined && checkpoint.offset <= endOffset && Date.now() - checkpoint.savedAt <= context.checkpointMaxAgeMs;
      if (checkpoint && !usable) await store.clear();
      const fromOffset = usable ? checkpoint.offset : 0;
      let records = 0;
      let lastLog = Date.now();
      context.onRestoreProgress?.(partition, fromOffset >= endOffset ? 1 : 0);
      await context.reader.restore(partition, keys, fromOffset, endOffset, (applied, position) => {
        records = applied;
        const progress = Math.min(1, (position - fromOffset) / Math.max(1, endOffset - fromOffset));
        context.onRestoreProgress?.(partition, progress);
        if (Date.now() - lastLog > RESTORE_LOG_INTERVAL_MS) {
          lastLog = Date.now();
          logger.info({ partition, records, position, fromOffset, toOffset: endOffset, progress: Number(progress.toFixed(3)) }, 'restoring keys partition');
        }
        // (a lost membership is a rebalance, which kafkajs handles: the restore goes on, unharmed)
        context.onHeartbeat?.().catch((err: unknown) => logger.debug({ partition, error: messageOf(err) }, 'heartbeat during a restore failed'));
      });
      await keys.deleteExpiredPseudonyms();
      await keys.checkForPseudonyms();
      const restoreStats = { partition, fromOffset, toOffset: endOffset, records, fullRestore: !usable, ms: Date.now() - started };
      context.onRestoreProgress?.(partition, 1);
      logger.info(restoreStats, 'keys partition restored');
      if (context.followKeys) context.reader.follow(partition, keys, Math.max(fromOffset, endOffset));
      return new PartitionTask(partition, producer, keys, store, restoreStats, context);
    } catch (err) {
      // (the restore's error is the one to report)
      await closeAll([() => store.close(), () => producer?.disconnect()]).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Waits until the store holds every key record that was written to the keys partition by now and
   * whose transaction commits. A record's key is written in the record's own transaction, before the
   * record became readable, so it lies below the keys partition's high watermark taken now. Once every
   * transaction with records below that mark has ended (the last stable offset has passed it: commit
   * markers reach each partition separately) and the follower has read up to there, a key still
   * missing was destroyed: the record is shredded, not early.
   */
  async catchUpKeys(): Promise<void> {
    const { endOffsets, keysTopic, reader, logger } = this.context;
    const highWatermark = await endOffsets.highWatermark(keysTopic, this.partition);
    const started = Date.now();
    let stable = await endOffsets.lastStable(keysTopic, this.partition);
    let lastHeartbeat = started;
    let lastWarning = started;
    while (stable < highWatermark) {
      // a transaction on the keys partition is still open: its commit (or abort) is on its way
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (Date.now() - lastHeartbeat > 1000) {
        lastHeartbeat = Date.now();
        await this.context.onHeartbeat?.();
      }
      if (Date.now() - lastWarning > 10_000) {
        lastWarning = Date.now();
        logger.warn({ partition: this.partition, waitedMs: lastWarning - started, stable, highWatermark }, 'waiting for an open transaction on the keys partition to end');
      }
      stable = await endOffsets.lastStable(keysTopic, this.partition);
    }
    await reader.caughtUp(this.partition, stable);
  }

  /** Runs work for this task one at a time (batches of two routes share the producer and the keys). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined); // (its caller sees the failure through `next`; the next work runs anyway)
    return next;
  }

  /**
   * Closes the producer and the store, going on after a failure and rethrowing the first; a revoked
   * task's store is deleted (state moves through Kafka).
   */
  async close(dropStore: boolean): Promise<void> {
    await this.queue;
    if (this.context.followKeys) this.context.reader.unfollow(this.partition, this.keys);
    await closeAll([
      () => this.producer?.disconnect(),
      () => this.store.close(),
      () => (dropStore ? KeyStore.destroy(this.store.location) : undefined),
    ]);
  }
}
