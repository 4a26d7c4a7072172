// Reads partitions of a topic from their log start up to given end offsets (by default, their end
// offsets at the time of the call), read_committed unless asked otherwise: aborted records are skipped,
// as every processor skips them. For the tools that inspect a topic once and exit (`keys status`,
// `verify-erasure`, `export`) and the tests. A consumer in a group of its own that commits nothing.
import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface PartitionEnd {
  partition: number;
  /** The log start offset (what compaction and retention have left). */
  low: number;
  /** The end offset read up to (exclusive). */
  high: number;
}

export interface ReadOptions {
  /** Only these partitions (default all). */
  partitions?: number[];
  /** Gives up when no batch has arrived for this long (default 60 s). */
  timeoutMs?: number;
  groupPrefix?: string;
  readUncommitted?: boolean;
  /** Bytes a fetch takes from a partition at most (kafkajs' default 1 MiB). */
  maxBytesPerPartition?: number;
}

/** The log start and end offsets of `topic`'s partitions (of `partitions` only, when given), by partition. */
export async function partitionEnds(kafka: Kafka, topic: string, partitions?: readonly number[]): Promise<PartitionEnd[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets
      .filter((o) => partitions === undefined || partitions.includes(o.partition))
      .map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
      .sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect();
  }
}

/** Calls `onRecord` for every record of `topic` (its `partitions`, default all) below the end offsets, in order per partition. */
export async function readToEnd(kafka: Kafka, topic: string, onRecord: (partition: number, message: KafkaMessage) => void, options: ReadOptions = {}): Promise<PartitionEnd[]> {
  const ends = await partitionEnds(kafka, topic, options.partitions);
  await readUpTo(kafka, topic, ends, (partition, messages) => {
    for (const message of messages) onRecord(partition, message);
  }, options);
  return ends;
}

/**
 * Calls `onBatch` with the records of each partition of `ends` below its `high` offset, batch by
 * batch, in order per partition; the next batch waits for the promise it returns, if any.
 */
export async function readUpTo(
  kafka: Kafka,
  topic: string,
  ends: readonly PartitionEnd[],
  onBatch: (partition: number, messages: KafkaMessage[]) => void | Promise<void>,
  options: ReadOptions = {},
): Promise<void> {
  const pending = new Map(ends.filter((e) => e.high > e.low).map((e) => [e.partition, e.high]));
  if (pending.size === 0) return;
  const consumer = kafka.consumer({
    groupId: `${options.groupPrefix ?? 'kafka-shredder-reader'}.${randomUUID()}`,
    readUncommitted: options.readUncommitted ?? false,
    maxWaitTimeInMs: 100,
    ...(options.maxBytesPerPartition ? { maxBytesPerPartition: options.maxBytesPerPartition, maxBytes: Math.max(options.maxBytesPerPartition, 10 * 1024 * 1024) } : {}),
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 60_000;
      let timer: NodeJS.Timeout | undefined;
      const stalled = () => reject(new Error(`reading ${topic} to its end stalled: nothing for ${timeoutMs} ms (partitions left: ${[...pending.keys()].join(', ')})`));
      const progressed = () => {
        clearTimeout(timer);
        timer = pending.size > 0 ? setTimeout(stalled, timeoutMs) : undefined;
      };
      progressed();
      const reached = (partition: number, next: number) => {
        const end = pending.get(partition);
        if (end !== undefined && next >= end) pending.delete(partition);
        progressed();
        if (pending.size === 0) resolve();
      };
      // (a batch read_committed filtered down to nothing never reaches eachBatch)
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => reached(payload.partition, Number(payload.lastOffset) + 1));
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch, pause }) => {
            const end = pending.get(batch.partition);
            if (end === undefined) {
              pause(); // (a partition not asked for, or read to its end: a subscription covers them all)
              return;
            }
            const messages = batch.messages.length > 0 && Number(batch.messages[batch.messages.length - 1].offset) >= end ? batch.messages.filter((m) => Number(m.offset) < end) : batch.messages;
            if (messages.length > 0) await onBatch(batch.partition, messages);
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}
