// `kafka-shredder reencrypt` against the real broker: an encrypted log migrated to a new keyspace
// (new keys topic, other algorithm, new master key) and back, record for record; a forget issued
// during the migration, audited and erased from the new keys topic within the erasure deadline; already
// shredded subjects staying shredded; a SIGKILL mid-migration.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { loadConfig } from '../../src/config/config.js';
import { DecryptingConsumer, type DecryptedMessage } from '../../src/decryptor/decrypting-consumer.js';
import type { ErasureAuditEntry } from '../../src/encryptor/erasure-audit.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import { createLogger } from '../../src/observability/logger.js';
import { Reencryptor } from '../../src/reencryptor/reencryptor.js';
import { killRepeatedly, startChildProcessor } from '../support/child-processor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, eventually, produce, readExactly, readTopic, testBrokers, uniqueName } from '../support/kafka.js';
import { testKafka } from '../support/kafka.js';

const b64 = (key: Buffer) => key.toString('base64');

interface Keyspace {
  output: string;
  keysTopic: string;
  keys: Record<number, Buffer>;
  current: number;
}

/** Environment of a reencrypt from `from` (an encrypted topic and its keys topic) to a fresh keyspace. */
function reencryptEnv(setup: EncryptorSetup, from: Keyspace, to: Keyspace, algorithm: string): Record<string, string> {
  return {
    ...setup.env,
    SHREDDER_ROUTES: `${from.output}->${to.output}`,
    SHREDDER_SOURCE_KEYS_TOPIC: from.keysTopic,
    SHREDDER_KEYS_TOPIC: to.keysTopic,
    SHREDDER_GROUP_ID: uniqueName('reencrypt'),
    SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-reencrypt-')),
    SHREDDER_ALGORITHM: algorithm,
    SHREDDER_MASTER_KEY: '',
    SHREDDER_MASTER_KEYS: Object.entries({ ...from.keys, ...to.keys }).map(([id, key]) => `${id}:${b64(key)}`).join(','),
    SHREDDER_MASTER_KEY_ID: String(to.current),
  };
}

async function startReencryptor(env: Record<string, string>): Promise<Reencryptor> {
  const reencryptor = new Reencryptor(loadConfig('reencrypt', env), createLogger(env.SHREDDER_LOG_LEVEL ?? 'silent'));
  await reencryptor.start();
  return reencryptor;
}

/** Everything the library hands an application reading `space`, once it has `count` records. */
async function readKeyspace(space: Keyspace, count: number): Promise<DecryptedMessage[]> {
  const consumer = new DecryptingConsumer({
    brokers: testBrokers(),
    groupId: uniqueName('reader'),
    topics: [space.output],
    masterKeys: space.keys,
    masterKeyId: space.current,
    keysTopic: space.keysTopic,
    dlqTopic: uniqueName('reader-dlq'),
    stateDir: mkdtempSync(join(tmpdir(), 'shredder-reader-')),
    logger: createLogger('silent'),
  });
  const received: DecryptedMessage[] = [];
  await consumer.run({ eachMessage: (m) => void received.push(m) });
  try {
    await eventually(`${count} records of ${space.output}`, async () => received.length >= count, 90_000, 300);
  } finally {
    await consumer.stop();
  }
  return received;
}

/** Per partition, the (status, key, value, timestamp, headers) of each record, in order. */
const shape = (records: DecryptedMessage[]) => {
  const byPartition = new Map<number, string[]>();
  for (const r of records) {
    const headers = Object.entries(r.headers).filter(([k]) => k !== 'shredder.status').map(([k, v]) => `${k}=${v}`).sort().join(';');
    byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), `${r.status}|${r.key}|${r.value?.toString('base64') ?? 'null'}|${r.timestamp}|${headers}`]);
  }
  return byPartition;
};

/** The algorithm bytes of the records' envelopes, but those of `except` (shredded subjects: they keep the envelope they had). */
const algorithms = (records: Map<number, KafkaMessage[]>, except: string) =>
  new Set([...records.values()].flat().filter((r) => r.value?.length && r.key?.toString() !== except).map((r) => r.value![1]));

describe('reencrypt', function () {
  this.timeout(240_000);
  let kafka: Kafka;
  const running: { stop(): Promise<void> }[] = [];
  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    for (const processor of running.splice(0).reverse()) await processor.stop();
  });

  it('migrates ChaCha20-Poly1305 to AES-256-GCM and back: every record the same, in order, shredded subjects still shredded', async () => {
    const setup = encryptorSetup();
    const old: Keyspace = { output: setup.output, keysTopic: setup.keysTopic, keys: { 1: setup.masterKey }, current: 1 };
    const encryptor = await startEncryptor(setup);
    running.push(encryptor);
    const sent = Array.from({ length: 300 }, (_, i) => ({ key: `user-${i % 30}`, value: randomBytes(20 + (i % 50)), headers: { 'x-seq': String(i) } }));
    await produce(kafka, setup.input, [...sent, { key: 'user-3', value: null }]); // a tombstone too
    await requestForget(kafka, [setup.input], Buffer.from('user-7')); // forgotten before the migration
    await readExactly(kafka, setup.output, sent.length + 2);
    const before = await readKeyspace(old, sent.length + 2);
    expect(before.filter((m) => m.status === 'shredded').map((m) => m.key!.toString())).to.deep.equal(Array(10).fill('user-7'));

    const aes: Keyspace = { output: uniqueName('migrated'), keysTopic: uniqueName('keys-v2'), keys: { 2: randomBytes(32) }, current: 2 };
    const first = await startReencryptor(reencryptEnv(setup, old, aes, 'aes-256-gcm'));
    running.push(first);
    await eventually('the migration caught up (/readyz)', async () => first.readiness().ready && first.readiness().lag === 0, 90_000, 500);
    const migrated = await readExactly(kafka, aes.output, sent.length + 2);
    expect([...algorithms(migrated, 'user-7')]).to.deep.equal([2]);
    const inAes = await readKeyspace(aes, sent.length + 2);
    expect(shape(inAes)).to.deep.equal(shape(before));
    expect(first.stats).to.include({ shredded: 10, forgets: 1 });

    const back: Keyspace = { output: uniqueName('migrated-back'), keysTopic: uniqueName('keys-v3'), keys: { 3: randomBytes(32) }, current: 3 };
    const second = await startReencryptor(reencryptEnv(setup, aes, back, 'chacha20-poly1305'));
    running.push(second);
    const returned = await readExactly(kafka, back.output, sent.length + 2);
    expect([...algorithms(returned, 'user-7')]).to.deep.equal([1]);
    expect([...algorithms(new Map([[0, [...returned.values()].flat().filter((r) => r.key?.toString() === 'user-7')]]), '')]).to.deep.equal([1]); // (shredded: the envelope they had)
    expect(shape(await readKeyspace(back, sent.length + 2))).to.deep.equal(shape(before));
    // the new keyspace never held a key of the forgotten subject's old records
    const newKeys = [...(await readTopic(kafka, aes.keysTopic)).values()].flat();
    expect(newKeys.filter((k) => k.key?.toString() === 'user-7').map((k) => k.value)).to.deep.equal([null]);
  });

  it('migrates into pseudonymous record keys and back: readable records the same under their subject ids, shredded ones naming nobody', async () => {
    const setup = encryptorSetup();
    const old: Keyspace = { output: setup.output, keysTopic: setup.keysTopic, keys: { 1: setup.masterKey }, current: 1 };
    running.push(await startEncryptor(setup));
    const sent = Array.from({ length: 60 }, (_, i) => ({ key: `user-${i % 6}`, value: `record ${i}` }));
    await produce(kafka, setup.input, sent);
    await requestForget(kafka, [setup.input], Buffer.from('user-2')); // forgotten before the migration
    await readExactly(kafka, setup.output, sent.length + 1);
    const before = await readKeyspace(old, sent.length + 1);
    const readable = (records: DecryptedMessage[]) => shape(records.filter((r) => r.status === 'ok'));

    const pseudonymous: Keyspace = { output: uniqueName('pseudonymous'), keysTopic: uniqueName('keys-p'), keys: { 2: randomBytes(32) }, current: 2 };
    running.push(await startReencryptor({ ...reencryptEnv(setup, old, pseudonymous, 'chacha20-poly1305'), SHREDDER_RECORD_KEYS: 'pseudonym' }));
    const migrated = allRecords(await readExactly(kafka, pseudonymous.output, sent.length + 1));
    const subjects = new Set(sent.map((r) => r.key));
    expect(migrated.every((r) => r.key!.length === 16 && !subjects.has(r.key!.toString()))).to.equal(true);
    expect(allRecords(await readTopic(kafka, pseudonymous.keysTopic)).every((r) => r.key!.length === 16 && (r.value === null || r.value[0] === 0x02))).to.equal(true);
    const inPseudonymous = await readKeyspace(pseudonymous, sent.length + 1);
    expect(readable(inPseudonymous)).to.deep.equal(readable(before));
    const shredded = inPseudonymous.filter((r) => r.status === 'shredded');
    expect(shredded).to.have.length(10);
    expect(shredded.some((r) => r.key!.toString() === 'user-2')).to.equal(false); // (their generation is gone: nothing names its subject)

    const back: Keyspace = { output: uniqueName('subject-keys'), keysTopic: uniqueName('keys-s'), keys: { 3: randomBytes(32) }, current: 3 };
    running.push(await startReencryptor(reencryptEnv(setup, pseudonymous, back, 'chacha20-poly1305')));
    await readExactly(kafka, back.output, sent.length + 1);
    expect(readable(await readKeyspace(back, sent.length + 1))).to.deep.equal(readable(before));
  });

  it('follows the old topic: a forget during the migration forgets the subject in the new keyspace too', async () => {
    const setup = encryptorSetup();
    const old: Keyspace = { output: setup.output, keysTopic: setup.keysTopic, keys: { 1: setup.masterKey }, current: 1 };
    running.push(await startEncryptor(setup));
    await produce(kafka, setup.input, Array.from({ length: 40 }, (_, i) => ({ key: `user-${i % 4}`, value: `v-${i}` })));
    const next: Keyspace = { output: uniqueName('migrated'), keysTopic: uniqueName('keys-v2'), keys: { 2: randomBytes(32) }, current: 2 };
    const reencryptor = await startReencryptor(reencryptEnv(setup, old, next, 'aes-256-gcm'));
    running.push(reencryptor);
    await readExactly(kafka, next.output, 40);
    await requestForget(kafka, [setup.input], Buffer.from('user-2'));
    await produce(kafka, setup.input, [{ key: 'user-2', value: 'after the forget' }]);
    await readExactly(kafka, next.output, 42);
    const records = await readKeyspace(next, 42);
    const user2 = records.filter((r) => r.key?.toString() === 'user-2');
    expect(user2.map((r) => r.status)).to.deep.equal([...Array(10).fill('shredded'), 'forget', 'ok']);
    expect(user2.at(-1)!.value!.toString()).to.equal('after the forget');
    expect(records.filter((r) => r.key?.toString() !== 'user-2').every((r) => r.status === 'ok')).to.equal(true);
  });

  it('audits a forget it carries into the new keyspace, and erases the subject\'s new key within the erasure deadline though nothing more is written', async function () {
    this.timeout(120_000);
    // deadline 4 s: segment.ms = max.compaction.lag.ms = 2 s (see the encryptor's erasure-deadline test)
    const setup = encryptorSetup({ SHREDDER_ERASURE_DEADLINE_MS: '4000' });
    const old: Keyspace = { output: setup.output, keysTopic: setup.keysTopic, keys: { 1: setup.masterKey }, current: 1 };
    running.push(await startEncryptor(setup));
    await produce(kafka, setup.input, Array.from({ length: 12 }, (_, i) => ({ key: `user-${i % 3}`, value: `v-${i}` })));
    const next: Keyspace = { output: uniqueName('migrated'), keysTopic: uniqueName('keys-v2'), keys: { 2: randomBytes(32) }, current: 2 };
    running.push(await startReencryptor(reencryptEnv(setup, old, next, 'chacha20-poly1305')));
    await readExactly(kafka, next.output, 12);
    await requestForget(kafka, [setup.input], Buffer.from('user-1'));
    await readExactly(kafka, next.output, 13);

    // one entry per keyspace: the encryptor's for the old keys topic, reencrypt's for the new one
    const entries = await eventually('reencrypt\'s audit entry', async () => {
      const found = allRecords(await readTopic(kafka, setup.config.auditTopic)).map((r) => JSON.parse(r.value!.toString()) as ErasureAuditEntry);
      return found.some((e) => e.keyDestroyed.keysTopic === next.keysTopic) ? found : undefined;
    });
    expect(entries.filter((e) => e.keyDestroyed.keysTopic === old.keysTopic)).to.have.length(1);
    const migrated = entries.filter((e) => e.keyDestroyed.keysTopic === next.keysTopic);
    expect(migrated).to.have.length(1);
    const [entry] = migrated;
    expect(entry.requested.topic, 'the request as reencrypt read it: the forget marker in the old encrypted topic').to.equal(old.output);
    expect(entry.keyDestroyed.keyIds, 'the new keyspace\'s key it destroyed').to.have.length(1);
    expect(entry.erasureDeadline.deadlineMs).to.equal(4000);
    const newKeys = (await readTopic(kafka, next.keysTopic)).get(entry.keyDestroyed.partition)!;
    const tombstone = newKeys.find((r) => r.key?.toString() === 'user-1' && r.value === null);
    expect(Number(tombstone!.offset), 'the entry names the tombstone in the new keys topic').to.equal(entry.keyDestroyed.tombstoneOffset);
    expect(JSON.stringify(entries)).to.not.contain('user-1');

    // from here on nothing is produced: only reencrypt's segment-roll marker can roll the new keys partition
    const remaining = await eventually('user-1\'s key in the new keys topic to be compacted away', async () => {
      const records = allRecords(await readTopic(kafka, next.keysTopic));
      return records.some((r) => r.key?.toString() === 'user-1' && r.value !== null) ? undefined : records;
    }, 60_000, 1000);
    expect(remaining.some((r) => r.key?.toString() === 'user-0' && r.value !== null), 'other subjects keep their keys').to.equal(true);
  });

  it('loses and doubles nothing when the reencrypt process is SIGKILLed mid-migration', async () => {
    const setup = encryptorSetup();
    const old: Keyspace = { output: setup.output, keysTopic: setup.keysTopic, keys: { 1: setup.masterKey }, current: 1 };
    const encryptor = await startEncryptor(setup);
    const total = 30_000;
    for (let sent = 0; sent < total; sent += 5000) {
      await produce(kafka, setup.input, Array.from({ length: 5000 }, (_, i) => ({ key: `user-${(sent + i) % 500}`, value: `record-${sent + i}` })));
    }
    await readExactly(kafka, setup.output, total, 120_000);
    await encryptor.stop();
    const next: Keyspace = { output: uniqueName('migrated'), keysTopic: uniqueName('keys-v2'), keys: { 2: randomBytes(32) }, current: 2 };
    const env = { ...reencryptEnv(setup, old, next, 'aes-256-gcm'), SHREDDER_LOG_LEVEL: 'info' };
    const last = await killRepeatedly(startChildProcessor('reencrypt', env), 'reencrypt', env, 2);
    try {
      const migrated = await readExactly(kafka, next.output, total, 120_000);
      const records = await readKeyspace(next, total);
      expect(records.filter((r) => r.status !== 'ok')).to.deep.equal([]);
      // in order per partition, each exactly once: the old topic's order
      const original = await readTopic(kafka, setup.output);
      for (const [partition, records_] of migrated) {
        expect(records_.map((r) => r.timestamp), `partition ${partition}`).to.deep.equal((original.get(partition) ?? []).map((r) => r.timestamp));
      }
      const values = records.map((r) => r.value!.toString());
      expect(new Set(values).size).to.equal(total);
    } finally {
      last.child.kill('SIGTERM');
      await last.exited;
    }
  });
});
