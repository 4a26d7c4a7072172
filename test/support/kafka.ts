// What integration tests share: the broker under test, unique topic names, and reading a partition
// from offset 0 up to its end.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type CompressionTypes, type Admin, type ConsumerConfig, type ConsumerRunConfig, type ITopicConfig, type KafkaMessage } from 'kafkajs';
import { readToEnd } from '../../src/kafka/read-to-end.js';
import { createTopicsAndWait } from '../../src/kafka/topics.js';

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
  await withAdmin(kafka, (admin) => createTopicsAndWait(admin, [topic]));
}

export interface ReadOptions {
  readUncommitted?: boolean;
  timeoutMs?: number;
}

/**
 * Every record of a topic, by partition, from the first offset up to the end offsets at the time of the
 * call, through a fresh consumer group. With read_committed, aborted records and transaction markers are
 * skipped but still count towards the end offset.
 */
export async function readTopic(kafka: Kafka, topic: string, options: ReadOptions = {}): Promise<Map<number, KafkaMessage[]>> {
  const read = new Map<number, KafkaMessage[]>();
  const ends = await readToEnd(kafka, topic, (partition, message) => (read.get(partition) ?? read.set(partition, []).get(partition)!).push(message), {
    readUncommitted: options.readUncommitted,
    timeoutMs: options.timeoutMs ?? 30_000,
    groupPrefix: 'test-reader',
  });
  return new Map(ends.map((e) => [e.partition, read.get(e.partition) ?? []]));
}

/** Every record of one partition (see readTopic). */
export async function readPartition(kafka: Kafka, topic: string, partition = 0, options: ReadOptions = {}): Promise<KafkaMessage[]> {
  return (await readTopic(kafka, topic, options)).get(partition) ?? [];
}

/** Polls until `check` holds, or fails after `timeoutMs` with `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000, intervalMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A kafkajs client whose keys-topic reader handles each batch `delayMs` late: the keys topic lags. */
export function withSlowKeysReader(kafka: Kafka, delayMs: number): Kafka {
  return new Proxy(kafka, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (property !== 'consumer') return typeof value === 'function' ? value.bind(target) : value;
      return (config: ConsumerConfig) => {
        const consumer = target.consumer(config);
        if (!config.groupId.includes('.keys-reader.')) return consumer;
        const run = consumer.run.bind(consumer);
        consumer.run = (runConfig?: ConsumerRunConfig) =>
          run({ ...runConfig, eachBatch: async (payload) => { await new Promise((r) => setTimeout(r, delayMs)); await runConfig!.eachBatch!(payload); } });
        return consumer;
      };
    },
  });
}

export type TestRecord = { key: string | Buffer | null; value: string | Buffer | null; partition?: number; headers?: Record<string, string> };

/** Sends records with a short-lived producer (kafkajs' default partitioner: murmur2 of the key). */
export async function produce(kafka: Kafka, topic: string, messages: TestRecord[], compression?: CompressionTypes): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages, compression });
  await producer.disconnect();
}

export const allRecords = (byPartition: Map<number, KafkaMessage[]>): KafkaMessage[] => [...byPartition.values()].flat();

/** The topic's records by partition once it holds at least `count` (more: duplicates, for the caller's assertions to show). */
export async function readAtLeast(kafka: Kafka, topic: string, count: number, timeoutMs = 60_000, intervalMs = 300): Promise<Map<number, KafkaMessage[]>> {
  return eventually(`${count} records in ${topic}`, async () => {
    let byPartition: Map<number, KafkaMessage[]>;
    try {
      byPartition = await readTopic(kafka, topic);
    } catch (err) {
      // a topic a processor has just created may not have its leader in the metadata yet: try again
      if ((err as { retriable?: boolean }).retriable || /not the leader|does not host this topic-partition|UNKNOWN_TOPIC/i.test(String((err as Error).message))) return undefined;
      throw err;
    }
    return allRecords(byPartition).length >= count ? byPartition : undefined;
  }, timeoutMs, intervalMs);
}

/** The topic's records by partition once it holds exactly `count` (more fails at once: duplicates). */
export async function readExactly(kafka: Kafka, topic: string, count: number, timeoutMs = 60_000): Promise<Map<number, KafkaMessage[]>> {
  const byPartition = await readAtLeast(kafka, topic, count, timeoutMs);
  const n = allRecords(byPartition).length;
  if (n > count) throw new Error(`${n} records in ${topic}, expected ${count}`);
  return byPartition;
}
