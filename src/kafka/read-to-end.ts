// Reads partitions of a topic from their log start up to their end offsets at the time of the call
// (read_committed unless asked otherwise: aborted records are skipped, as every processor skips them),
// for the tools that inspect a topic once and exit (`keys status`, `verify-erasure`) and the tests. A
// consumer in a group of its own that commits nothing.
import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface PartitionEnd {
  partition: number;
  /** The log start offset (what compaction and retention have left). */
  low: number;
  /** The end offset read up to (exclusive). */
  high: number;
}

/** Calls `onRecord` for every record of `topic` (its `partitions`, default all) below the end offsets, in order per partition. */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  onRecord: (partition: number, message: KafkaMessage) => void,
  options: { partitions?: number[]; timeoutMs?: number; groupPrefix?: string; readUncommitted?: boolean } = {},
): Promise<PartitionEnd[]> {
  const admin = kafka.admin();
  await admin.connect();
  let offsets: { partition: number; low: string; high: string }[];
  try {
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  const ends = offsets
    .filter((o) => options.partitions === undefined || options.partitions.includes(o.partition))
    .map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
    .sort((a, b) => a.partition - b.partition);
  const pending = new Map(ends.filter((e) => e.high > e.low).map((e) => [e.partition, e.high]));
  if (pending.size === 0) return ends;
  const consumer = kafka.consumer({ groupId: `${options.groupPrefix ?? 'kafka-shredder-reader'}.${randomUUID()}`, readUncommitted: options.readUncommitted ?? false, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} to its end timed out (partitions left: ${[...pending.keys()].join(', ')})`)), options.timeoutMs ?? 60_000);
      const reached = (partition: number, next: number) => {
        const end = pending.get(partition);
        if (end !== undefined && next >= end) pending.delete(partition);
        if (pending.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      // (a batch read_committed filtered down to nothing never reaches eachBatch)
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => reached(payload.partition, Number(payload.lastOffset) + 1));
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const end = pending.get(batch.partition);
            if (end === undefined) return;
            for (const message of batch.messages) if (Number(message.offset) < end) onRecord(batch.partition, message);
          },
        })
        .then(() => {
          // (a subscription covers every partition: the others are paused once it runs, and ignored till then)
          const others = offsets.map((o) => o.partition).filter((p) => !pending.has(p));
          if (options.partitions && others.length > 0) consumer.pause([{ topic, partitions: others }]);
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return ends;
}
