// What integration tests share: the broker under test, unique topic names, and reading a partition
// from offset 0 up to its end.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin, type ITopicConfig, type KafkaMessage } from 'kafkajs';

// Test producers use kafkajs' default partitioner; its v2 migration warning is noise here.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

export function testBrokers(): string[] {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set: run integration tests with `npm test`');
  return brokers.split(',');
}

export function testKafka(clientId = 'kafka-shredder-test'): Kafka {
  return new Kafka({ clientId, brokers: testBrokers(), logLevel: logLevel.NOTHING });
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function withAdmin<T>(kafka: Kafka, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopic(kafka: Kafka, topic: ITopicConfig): Promise<void> {
  await withAdmin(kafka, (admin) => admin.createTopics({ topics: [topic], waitForLeaders: true }));
}

export interface ReadOptions {
  readUncommitted?: boolean;
  timeoutMs?: number;
}

/**
 * Every record of one partition from its first offset up to the end offset at the time of the call,
 * through a fresh consumer group. With read_committed, aborted records and transaction markers are
 * skipped but still count towards the end offset, so the read ends on the last offset kafkajs passes.
 */
export async function readPartition(
  kafka: Kafka,
  topic: string,
  partition = 0,
  options: ReadOptions = {},
): Promise<KafkaMessage[]> {
  const endOffset = await withAdmin(kafka, async (admin) => {
    const offsets = await admin.fetchTopicOffsets(topic);
    return Number(offsets.find((o) => o.partition === partition)?.high ?? 0);
  });
  const records: KafkaMessage[] = [];
  if (endOffset === 0) return records;
  const consumer = kafka.consumer({ groupId: uniqueName('test-reader'), readUncommitted: options.readUncommitted ?? false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reading ${topic}/${partition} to offset ${endOffset} timed out`)),
        options.timeoutMs ?? 30_000,
      );
      // END_BATCH_PROCESS also fires for batches that read_committed filtered down to nothing
      // (only control records or aborted data), which eachBatch never sees.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.partition === partition && Number(payload.lastOffset) + 1 >= endOffset) {
          clearTimeout(timer);
          resolve();
        }
      });
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            if (batch.partition === partition) records.push(...batch.messages);
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}
