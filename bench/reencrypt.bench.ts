// Re-encryption benchmark (`npm run bench:reencrypt`) on a real local Kafka broker: an encrypted
// backlog of N records of 256 B drained by the decryptor (open, write plaintext) and by reencrypt
// (open, seal again under a new keyspace with AES-256-GCM, write ciphertext), taking turns (A-B-B-A),
// in one run. Throughput: records drained from the processor's start to its last commit.
import '../src/kafka/linear-grouping.js'; // (first: before kafkajs loads, as the CLI does)
import '../src/kafka/record-encoding.js'; // (as early: see there)
import '../src/kafka/record-batch-encoding.js'; // (as early: see there)
import '../src/kafka/produce-request-encoding.js'; // (as early: see there)
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from '../src/config/config.js';
import { Decryptor } from '../src/decryptor/decryptor.js';
import { Encryptor } from '../src/encryptor/encryptor.js';
import { LocalKafkaBroker } from '../src/dev/local-broker/index.js';
import { createLogger } from '../src/observability/logger.js';
import { Reencryptor } from '../src/reencryptor/reencryptor.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 50_000);
const logger = createLogger('warn');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = randomBytes(3).toString('hex');

async function drained(processor: { start(): Promise<void>; stop(): Promise<void>; stats: { recordsIn: number } }): Promise<number> {
  const started = Date.now();
  await processor.start();
  while (processor.stats.recordsIn < RECORDS) await sleep(20);
  const seconds = (Date.now() - started) / 1000;
  await processor.stop();
  return RECORDS / seconds;
}

async function main(): Promise<void> {
  const broker = new LocalKafkaBroker();
  const brokers = await broker.start();
  try {
    const masterKey = randomBytes(32).toString('base64');
    const base = { KAFKA_BROKERS: brokers.join(','), SHREDDER_LOG_LEVEL: 'warn', SHREDDER_HTTP_PORT: '0' };
    const encryptEnv = { ...base, SHREDDER_ROUTES: `plain-${run}->enc-${run}`, SHREDDER_KEYS_TOPIC: `keys-${run}`, SHREDDER_MASTER_KEY: masterKey, SHREDDER_GROUP_ID: `enc-${run}`, SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'bench-')) };
    const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const value = randomBytes(256);
    for (let sent = 0; sent < RECORDS; sent += 5000) {
      await producer.send({ topic: `plain-${run}`, messages: Array.from({ length: 5000 }, (_, i) => ({ key: `subject-${(sent + i) % 1000}`, value })) }).catch(async (err) => {
        if (sent > 0) throw err;
        // (the topic is created by the encryptor: start it once to make its topics)
        const e = new Encryptor(loadConfig('encrypt', encryptEnv), logger);
        await e.start();
        await e.stop();
        await producer.send({ topic: `plain-${run}`, messages: Array.from({ length: 5000 }, (_, i) => ({ key: `subject-${(sent + i) % 1000}`, value })) });
      });
    }
    await producer.disconnect();
    const encryptor = new Encryptor(loadConfig('encrypt', encryptEnv), logger);
    console.log(`encrypting ${RECORDS} records of 256 B ...`);
    await drained(encryptor);

    const decrypt = (n: number) =>
      new Decryptor(loadConfig('decrypt', { ...base, SHREDDER_ROUTES: `enc-${run}->dec-${run}-${n}`, SHREDDER_KEYS_TOPIC: `keys-${run}`, SHREDDER_MASTER_KEY: masterKey, SHREDDER_GROUP_ID: `dec-${run}-${n}`, SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'bench-')) }), logger);
    const reencrypt = (n: number) =>
      new Reencryptor(
        loadConfig('reencrypt', {
          ...base,
          SHREDDER_ROUTES: `enc-${run}->re-${run}-${n}`,
          SHREDDER_SOURCE_KEYS_TOPIC: `keys-${run}`,
          SHREDDER_KEYS_TOPIC: `keys-v2-${run}-${n}`,
          SHREDDER_ALGORITHM: 'aes-256-gcm',
          SHREDDER_MASTER_KEYS: `1:${masterKey},2:${randomBytes(32).toString('base64')}`,
          SHREDDER_MASTER_KEY_ID: '2',
          SHREDDER_GROUP_ID: `re-${run}-${n}`,
          SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'bench-')),
        }),
        logger,
      );
    const rows: [string, number][] = [];
    for (const [n, mode] of (['decrypt', 'reencrypt', 'reencrypt', 'decrypt'] as const).entries()) {
      const perSecond = await drained(mode === 'decrypt' ? decrypt(n) : reencrypt(n));
      rows.push([mode, perSecond]);
      console.log(`  ${mode.padEnd(9)} ${Math.round(perSecond).toLocaleString('en-US').padStart(8)} records/s`);
    }
    const median = (mode: string) => {
      const v = rows.filter(([m]) => m === mode).map(([, r]) => r).sort((a, b) => a - b);
      return (v[0] + v[v.length - 1]) / 2;
    };
    console.log(`reencrypt / decrypt: ${(median('reencrypt') / median('decrypt')).toFixed(2)} (means of two turns each, ${RECORDS} records)`);
  } finally {
    await broker.stop();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
