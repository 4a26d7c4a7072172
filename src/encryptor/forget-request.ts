// `kafka-shredder forget <subject>`: writes a forget request (key = subject, null value, header
// shredder.command: forget) to every route's input topic, so that each output stream carries its own
// forget marker in order with the subject's records. The request goes to the partition kafkajs'
// default partitioner picks for the key: murmur2, the same as the Java client's default, which is
// where the subject's records are when their producers use a default partitioner. With
// SHREDDER_SUBJECT_FIELD it goes to every partition instead.
import { CompressionTypes, Partitioners, type Kafka } from 'kafkajs';
import { COMMAND_HEADER, FORGET_COMMAND } from '../wire/headers.js';

export interface ForgetOptions {
  /**
   * Write the request to every partition instead of the key's: with SHREDDER_SUBJECT_FIELD the record
   * key is not the subject, so a subject's records (and its keys, one per partition) can be anywhere.
   */
  allPartitions?: boolean;
}

export async function requestForget(kafka: Kafka, inputTopics: string[], subject: Uint8Array, options: ForgetOptions = {}): Promise<void> {
  if (subject.length === 0) throw new Error('the subject must not be empty');
  const request = (partition?: number) => ({ key: Buffer.from(subject), value: null, partition, headers: { [COMMAND_HEADER]: FORGET_COMMAND } });
  let partitionsOf = new Map<string, number[]>();
  if (options.allPartitions) {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: inputTopics });
      partitionsOf = new Map(metadata.topics.map((t) => [t.name, t.partitions.map((p) => p.partitionId)]));
    } finally {
      await admin.disconnect();
    }
  }
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.sendBatch({
      acks: -1,
      compression: CompressionTypes.None,
      topicMessages: inputTopics.map((topic) => ({
        topic,
        messages: options.allPartitions ? (partitionsOf.get(topic) ?? []).map((p) => request(p)) : [request()],
      })),
    });
  } finally {
    await producer.disconnect();
  }
}
