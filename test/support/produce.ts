// Input that keeps coming while a test kills or stops processors.
import type { Kafka } from 'kafkajs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Produces `total` records (`event-<n>`) in chunks with pauses; keys cycle through `subjects` users. */
export async function produceSlowly(kafka: Kafka, topic: string, total: number, chunk: number, pauseMs: number, subjects = 37): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  for (let sent = 0; sent < total; sent += chunk) {
    const messages = Array.from({ length: Math.min(chunk, total - sent) }, (_, i) => ({ key: `user-${(sent + i) % subjects}`, value: `event-${sent + i}` }));
    await producer.send({ topic, messages });
    await sleep(pauseMs);
  }
  await producer.disconnect();
}
