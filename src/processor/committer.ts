// How a handled batch is committed: its writes and its input offset in one transaction of its task
// (exactly-once), or, for a processor whose effects Kafka cannot make transactional, through one
// idempotent producer and then the consumer's offset commit (at-least-once). Also the offset past a
// batch of transaction markers, for a processor that must see its lag reach 0 (reencrypt).
import { Partitioners, type Batch, type CompressionTypes, type Consumer, type Kafka, type Producer, type TopicMessages } from 'kafkajs';
import { chunkMessages, commitTransaction, type WrittenOffsets } from '../kafka/transactions.js';
import type { PartitionTask } from './partition-task.js';

/** What one input batch writes (see BatchResult). */
export interface BatchWrites {
  topicMessages: TopicMessages[];
  /** Transactional only: records made from the offsets the others got, in the same transaction (see TransactionalWrite.followUp). */
  followUp?: (written: WrittenOffsets) => TopicMessages[];
}

export interface CommitterOptions {
  kafka: Kafka;
  consumer: Consumer;
  groupId: string;
  transactional: boolean;
  /** Produce requests are cut at this many bytes. */
  maxRequestBytes?: number;
  compression?: CompressionTypes;
  /** Keep the next offset committed per input partition (commitMarkers needs it). */
  trackCommitted: boolean;
}

export class Committer {
  private plainProducer?: Promise<Producer>;
  /** The next offset committed last, per input `topic/partition` (see commitMarkers). */
  private readonly committedNext = new Map<string, number>();

  constructor(private readonly options: CommitterOptions) {}

  /** Commits the batch's writes and its input offset; returns the next offset of each partition written to (transactional). */
  async commit(task: PartitionTask, batch: Batch, { topicMessages, followUp }: BatchWrites): Promise<WrittenOffsets> {
    const { groupId, transactional, compression, maxRequestBytes } = this.options;
    const next = Number(batch.lastOffset()) + 1;
    let written: WrittenOffsets;
    if (transactional) {
      written = await commitTransaction(task.producer!, {
        topicMessages,
        followUp,
        offsets: { consumerGroupId: groupId, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(next) }] }] },
        compression,
      }, maxRequestBytes);
    } else {
      const toSend = topicMessages.filter((t) => t.messages.length > 0);
      if (toSend.length > 0) {
        const producer = await this.producer();
        for (const request of chunkMessages(toSend, maxRequestBytes)) await producer.sendBatch({ topicMessages: request, compression });
      }
      await this.options.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(next) }]);
      written = new Map<string, number>();
    }
    if (this.options.trackCommitted) this.committedNext.set(`${batch.topic}/${batch.partition}`, next);
    return written;
  }

  /**
   * Commits the offset past a fetched batch of transaction markers (kafkajs hands no such batch to
   * eachBatch), in a transaction of its task, unless a later batch of the partition has committed past
   * it meanwhile.
   */
  async commitMarkers(task: PartitionTask, topic: string, partition: number, lastOffset: number, stillOwned: () => boolean): Promise<void> {
    await task.exclusive(async () => {
      const key = `${topic}/${partition}`;
      const next = lastOffset + 1;
      if ((this.committedNext.get(key) ?? -1) >= next || !stillOwned()) return;
      await commitTransaction(task.producer!, {
        topicMessages: [],
        offsets: { consumerGroupId: this.options.groupId, topics: [{ topic, partitions: [{ partition, offset: String(next) }] }] },
      });
      this.committedNext.set(key, next);
    });
  }

  private producer(): Promise<Producer> {
    this.plainProducer ??= (async () => {
      const producer = this.options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      return producer;
    })();
    const connecting = this.plainProducer;
    // (a producer that could not connect is not kept: the next batch tries again; this batch's
    // caller sees the same error through `connecting`)
    connecting.catch(() => {
      if (this.plainProducer === connecting) this.plainProducer = undefined;
    });
    return connecting;
  }

  async close(): Promise<void> {
    const producer = await this.plainProducer?.catch(() => undefined); // (one that never connected has nothing to close)
    await producer?.disconnect();
  }
}
