// Development tooling (src/dev/). `kafka-shredder demo` (`npm start`): a local Apache Kafka, the encryptor and the decryptor, and a
// scripted walk through produce, read, forget and read again, in plain words.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { loadConfig } from '../config/config.js';
import { DecryptingConsumer, type DecryptedMessage } from '../decryptor/decrypting-consumer.js';
import { Decryptor } from '../decryptor/decryptor.js';
import { Encryptor } from '../encryptor/encryptor.js';
import { requestForget } from '../encryptor/forget-request.js';
import { createKafka } from '../kafka/client.js';
import { LocalKafkaBroker } from './local-broker/index.js';
import { createLogger } from '../observability/logger.js';
import { closeAll } from '../errors/close-all.js';
import { messageOf } from '../errors/shredder-errors.js';

const say = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const EVENTS: [string, string][] = [
  ['alice', '{"type":"signed-up","name":"Alice Liddell","email":"alice@example.org"}'],
  ['bob', '{"type":"signed-up","name":"Bob Builder","email":"bob@example.org"}'],
  ['alice', '{"type":"address-changed","street":"7 Rabbit Hole Lane"}'],
  ['bob', '{"type":"order-placed","total":42.5}'],
  ['alice', '{"type":"order-placed","total":17.0}'],
];

class Interrupted extends Error {}

async function readAll(kafka: Kafka, topic: string, atLeast: number, interrupted: () => boolean): Promise<KafkaMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (;;) {
      if (interrupted()) throw new Interrupted();
      const offsets = await admin.fetchTopicOffsets(topic);
      const count = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
      if (count >= atLeast) break;
      await sleep(200);
    }
  } finally {
    await admin.disconnect();
  }
  const records: KafkaMessage[] = [];
  const consumer = kafka.consumer({ groupId: `demo-reader-${randomBytes(4).toString('hex')}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void records.push(message) });
  try {
    while (records.length < atLeast) {
      if (interrupted()) throw new Interrupted();
      await sleep(100);
    }
  } finally {
    await consumer.disconnect();
  }
  return records.sort((a, b) => Number(a.timestamp) - Number(b.timestamp));
}

const subject = (m: { key: Buffer | null }) => (m.key?.toString() ?? '').padEnd(6);

export async function runDemo(): Promise<number> {
  let signal: NodeJS.Signals | undefined;
  const onSignal = (s: NodeJS.Signals) => {
    signal = s;
    say(`\n${s}: stopping.`);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const interrupted = () => signal !== undefined;
  const check = () => {
    if (interrupted()) throw new Interrupted();
  };

  say('kafka-shredder demo: crypto-shredding on a local Apache Kafka.');
  say('');
  say('1. Starting a single-node Apache Kafka (KRaft) on 127.0.0.1 (the first run downloads its jars with Maven)...');
  const broker = new LocalKafkaBroker();
  const stateDir = mkdtempSync(join(tmpdir(), 'kafka-shredder-demo-'));
  let encryptor: Encryptor | undefined;
  let decryptor: Decryptor | undefined;
  let reader: DecryptingConsumer | undefined;
  try {
    const brokers = await broker.start();
    say(`   Kafka is up at ${brokers.join(',')}.`);
    check();

    const env = {
      KAFKA_BROKERS: brokers.join(','),
      SHREDDER_MASTER_KEY: randomBytes(32).toString('base64'),
      SHREDDER_STATE_DIR: stateDir,
      SHREDDER_LOG_LEVEL: 'silent',
      SHREDDER_HTTP_PORT: '0',
    };
    const encryptConfig = loadConfig('encrypt', env);
    const decryptConfig = loadConfig('decrypt', env);
    const logger = createLogger('silent');
    const kafka = createKafka(encryptConfig.kafka, logger);
    say('');
    say('2. Starting the two sidecar processors:');
    say('   encryptor  to-encrypt (plaintext, short retention) -> encrypted-data (kept forever)');
    say('   decryptor  encrypted-data + encryption-keys -> decrypted-data (plaintext, short retention)');
    encryptor = new Encryptor(encryptConfig, logger);
    await encryptor.start();
    decryptor = new Decryptor(decryptConfig, logger);
    await decryptor.start();
    check();

    say('');
    say('3. The application produces five events for two users to "to-encrypt" (record key = the user):');
    const producer = kafka.producer();
    await producer.connect();
    for (const [user, event] of EVENTS) {
      await producer.send({ topic: 'to-encrypt', messages: [{ key: user, value: event }] });
      say(`   ${user.padEnd(6)} ${event}`);
    }
    await producer.disconnect();

    say('');
    say('4. What the log keeps forever, "encrypted-data": each event sealed under its own user\'s key.');
    for (const record of await readAll(kafka, 'encrypted-data', EVENTS.length, interrupted)) {
      const value = record.value!;
      say(`   ${subject(record)} key id ${value.subarray(2, 10).toString('hex')}  ${value.subarray(22, 46).toString('hex')}... (${value.length} bytes)`);
    }
    say('   (alice\'s events share one key id, bob\'s another: one data key per user, in "encryption-keys")');

    say('');
    say('5. What consumers read through the decryptor, "decrypted-data":');
    for (const record of await readAll(kafka, 'decrypted-data', EVENTS.length, interrupted)) {
      say(`   ${subject(record)} ${record.value?.toString()}`);
    }

    say('');
    say('6. Alice asks to be forgotten: kafka-shredder forget alice');
    await requestForget(kafka, ['to-encrypt'], Buffer.from('alice'));
    while (encryptor.stats.subjectsForgotten < 1) {
      check();
      await sleep(100);
    }
    say('   The encryptor destroyed alice\'s key: a tombstone replaced it in "encryption-keys", and compaction');
    say(`   erases the old key from the topic within SHREDDER_ERASURE_DEADLINE_MS (${encryptConfig.erasureDeadlineMs / 3_600_000} h here).`);
    say('   A forget marker follows alice\'s events in "encrypted-data", so consumers purge what they derived.');

    say('');
    say('7. A new consumer replays the whole encrypted log from the beginning (the library\'s DecryptingConsumer):');
    const seen: DecryptedMessage[] = [];
    reader = new DecryptingConsumer({
      brokers,
      groupId: 'demo-replay',
      topics: ['encrypted-data'],
      masterKey: Buffer.from(env.SHREDDER_MASTER_KEY, 'base64'),
      stateDir: join(stateDir, 'replay'),
      logger,
    });
    await reader.run({ eachMessage: (message) => void seen.push(message) });
    while (seen.length < EVENTS.length + 1) {
      check();
      await sleep(100);
    }
    seen.sort((a, b) => Number(a.timestamp) - Number(b.timestamp));
    for (const message of seen) {
      const shown = message.status === 'ok' ? message.value?.toString() : message.status === 'shredded' ? '[shredded: the key is gone]' : '[forget: purge this user]';
      say(`   ${subject(message)} ${shown}`);
    }
    say('   Bob\'s events are intact; alice\'s are unreadable everywhere, in every copy and backup of the log.');
    say('   ("decrypted-data" still holds her plaintext until its short retention ends, and its consumers got');
    say('   the forget marker: purging what they derived from it is their part.)');
    say('');
    say('8. Done. Stopping the processors and Kafka.');
    return 0;
  } catch (err) {
    if (err instanceof Interrupted) return 0;
    say(`The demo failed: ${(err as Error).message}`);
    return 1;
  } finally {
    // (the demo's own outcome is what it reports; a failed clean-up is told, not thrown)
    await closeAll([() => reader?.stop(), () => decryptor?.stop(), () => encryptor?.stop(), () => broker.stop()]).catch((err: unknown) => say(`Stopping the demo's parts failed: ${messageOf(err)}`));
    rmSync(stateDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    say('Stopped; the broker\'s data folder is removed.');
  }
}
