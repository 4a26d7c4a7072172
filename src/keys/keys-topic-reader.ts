// Reads keys-topic partitions into key stores (changelog restore). One long-lived consumer per process,
// in a group of its own so that it sees every partition; partitions stay paused until restored, then
// are read from the store's checkpoint up to a target offset (read_committed: aborted key records of a
// crashed transaction are never restored).
import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { FORGOTTEN_AT_HEADER, headerText } from '../wire/headers.js';
import type { Logger } from '../observability/logger.js';
import type { PartitionKeys } from './partition-keys.js';

interface Restore {
  keys: PartitionKeys;
  target: number;
  applied: number;
  resolve: () => void;
  reject: (err: Error) => void;
  onProgress?: (applied: number) => void;
}

export class KeysTopicReader {
  private readonly consumer: Consumer;
  private readonly active = new Map<number, Restore>();
  private running = false;

  constructor(kafka: Kafka, private readonly topic: string, groupIdPrefix: string, private readonly logger: Logger) {
    this.consumer = kafka.consumer({
      groupId: `${groupIdPrefix}.keys-reader.${randomUUID()}`,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
    });
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // also fires for batches read_committed filtered to nothing (transaction markers)
      if (payload.topic === this.topic) this.settleIfDone(payload.partition, Number(payload.lastOffset) + 1);
    });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({ autoCommit: false, eachBatch: (payload) => this.onBatch(payload) });
    this.running = true;
  }

  /** Reads `partition` from `fromOffset` up to `toOffset` (exclusive) into `keys`, committing to its store. */
  restore(partition: number, keys: PartitionKeys, fromOffset: number, toOffset: number, onProgress?: (applied: number) => void): Promise<void> {
    if (!this.running) throw new Error('the keys topic reader is not started');
    if (this.active.has(partition)) throw new Error(`partition ${partition} is already being restored`);
    if (fromOffset >= toOffset) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.active.set(partition, { keys, target: toOffset, applied: 0, resolve, reject, onProgress });
      this.consumer.seek({ topic: this.topic, partition, offset: String(fromOffset) });
      this.consumer.resume([{ topic: this.topic, partitions: [partition] }]);
    });
  }

  private async onBatch({ batch }: EachBatchPayload): Promise<void> {
    const restore = this.active.get(batch.partition);
    if (!restore) {
      this.consumer.pause([{ topic: this.topic, partitions: [batch.partition] }]);
      return;
    }
    try {
      for (const message of batch.messages) {
        if (Number(message.offset) >= restore.target) break;
        if (!message.key || message.key.length === 0) continue; // the segment-roll marker, not a subject
        const forgottenAt = message.value === null ? Number(message.timestamp) : Number(headerText(message.headers, FORGOTTEN_AT_HEADER)) || undefined;
        restore.keys.applyRecord(new Uint8Array(message.key), message.value ? new Uint8Array(message.value) : null, forgottenAt);
        restore.applied++;
      }
      const next = Math.min(Number(batch.lastOffset()) + 1, restore.target);
      await restore.keys.commit(next);
      restore.onProgress?.(restore.applied);
    } catch (err) {
      restore.keys.rollback();
      this.finish(batch.partition)?.reject(err as Error);
    }
  }

  private settleIfDone(partition: number, nextOffset: number): void {
    const restore = this.active.get(partition);
    if (restore && nextOffset >= restore.target) {
      this.logger.debug({ partition, records: restore.applied }, 'keys partition restored');
      this.finish(partition)?.resolve();
    }
  }

  private finish(partition: number): Restore | undefined {
    const restore = this.active.get(partition);
    this.active.delete(partition);
    this.consumer.pause([{ topic: this.topic, partitions: [partition] }]);
    return restore;
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const partition of [...this.active.keys()]) this.finish(partition)?.reject(new Error('keys topic reader stopped'));
    await this.consumer.disconnect();
  }
}
