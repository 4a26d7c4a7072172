// `kafka-shredder forget <subject>`: writes a forget request (key = subject, null value, header
// shredder.command: forget) to every route's input topic, so that each output stream carries its own
// forget marker in order with the subject's records. The request goes to the partition kafkajs'
// default partitioner picks for the key: murmur2, the same as the Java client's default, which is
// where the subject's records are when their producers use a default partitioner. With
// SHREDDER_SUBJECT_FIELD it goes to every partition instead.
import { CompressionTypes, Partitioners, type Kafka } from 'kafkajs';
import { TopicLayoutError } from '../kafka/topics.js';
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
  const request = (partition?: number) => ({ key: Buffer.from(subject), value: null, partition, timestamp, headers: { [COMMAND_HEADER]: FORGET_COMMAND } });
  // One timestamp for every copy: the request's time, the same on every route (see the encryptor's "Forget").
  const timestamp = String(Date.now());
  let partitionsOf = new Map<string, number[]>();
  const admin = kafka.admin();
  await admin.connect();
  try {
    // Checked first: brokers that do not auto-create topics would only time out on a missing one, and
    // one that does would create a topic that no encryptor reads.
    const existing = new Set(await admin.listTopics());
    const missing = inputTopics.filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      throw new TopicLayoutError(
        `input topic${missing.length > 1 ? 's' : ''} ${missing.map((t) => JSON.stringify(t)).join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist: ` +
          'check the from topics of SHREDDER_ROUTES (the encryptor creates its input topics when it starts); no forget request was written',
      );
    }
    if (options.allPartitions) {
      const metadata = await admin.fetchTopicMetadata({ topics: inputTopics });
      partitionsOf = new Map(metadata.topics.map((t) => [t.name, t.partitions.map((p) => p.partitionId)]));
    }
  } finally {
    await admin.disconnect();
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
