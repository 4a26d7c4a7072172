// `kafka-shredder forget <subject>`: writes a forget request (key = subject, null value, header
// shredder.command: forget) to every route's input topic, so that each output stream carries its own
// forget marker in order with the subject's records. The request goes to the partition kafkajs'
// default partitioner picks for the key: murmur2, the same as the Java client's default, which is
// where the subject's records are when their producers use a default partitioner.
import { CompressionTypes, Partitioners, type Kafka } from 'kafkajs';
import { COMMAND_HEADER, FORGET_COMMAND } from '../wire/headers.js';

export async function requestForget(kafka: Kafka, inputTopics: string[], subject: Uint8Array): Promise<void> {
  if (subject.length === 0) throw new Error('the subject must not be empty');
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.sendBatch({
      acks: -1,
      compression: CompressionTypes.None,
      topicMessages: inputTopics.map((topic) => ({
        topic,
        messages: [{ key: Buffer.from(subject), value: null, headers: { [COMMAND_HEADER]: FORGET_COMMAND } }],
      })),
    });
  } finally {
    await producer.disconnect();
  }
}
