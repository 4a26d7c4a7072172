// Master-key rotation against the real broker: keys re-wrapped under the new master key in the
// background while records keep coming, a forget racing a re-wrap, a key of a master key the keyring
// lacks, and `kafka-shredder keys status`.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { loadConfig } from '../../src/config/config.js';
import { Encryptor } from '../../src/encryptor/encryptor.js';
import { keysStatus } from '../../src/keys/keys-status.js';
import { createLogger } from '../../src/observability/logger.js';
import { COMMAND_HEADER, FORGET_COMMAND } from '../../src/wire/headers.js';
import { decryptorSetup, startDecryptingConsumer, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, eventually, produce, readExactly, readTopic, testKafka } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

const b64 = (key: Buffer) => key.toString('base64');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The encryptor of `setup`'s deployment restarted with a keyring: `keys` by id, `current` wrapping new keys. */
async function startWithKeyring(setup: EncryptorSetup, keys: Record<number, Buffer>, current: number, extra: Record<string, string> = {}): Promise<Encryptor> {
  const env = {
    ...setup.env,
    SHREDDER_MASTER_KEY: '',
    SHREDDER_MASTER_KEYS: Object.entries(keys).map(([id, key]) => `${id}:${b64(key)}`).join(','),
    SHREDDER_MASTER_KEY_ID: String(current),
    SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-state-')),
    ...extra,
  };
  const encryptor = new Encryptor(loadConfig('encrypt', env), createLogger(setup.config.logLevel));
  await encryptor.start();
  return encryptor;
}

/** Forget requests for `subjects`, as `kafka-shredder forget` writes them, in chunks with pauses. */
async function forgetSlowly(kafka: Kafka, topic: string, subjects: string[], chunk: number, pauseMs: number): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < subjects.length; i += chunk) {
    await producer.send({ topic, messages: subjects.slice(i, i + chunk).map((s) => ({ key: s, value: null, headers: { [COMMAND_HEADER]: FORGET_COMMAND } })) });
    await sleep(pauseMs);
  }
  await producer.disconnect();
}

describe('master-key rotation', function () {
  this.timeout(180_000);
  let kafka: Kafka;
  const running: { stop(): Promise<void> }[] = [];
  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    for (const processor of running.splice(0).reverse()) await processor.stop();
  });

  it('re-wraps every key under the new master key while records keep coming, and loses or spoils no record', async () => {
    const setup = encryptorSetup();
    const key1 = setup.masterKey;
    const key2 = randomBytes(32);
    const first = await startEncryptor(setup);
    const before = Array.from({ length: 300 }, (_, i) => ({ key: `subject-${i % 60}`, value: `before-${i}` }));
    await produce(kafka, setup.input, before);
    await readExactly(kafka, setup.output, before.length);
    await first.stop();

    const rotated = await startWithKeyring(setup, { 1: key1, 2: key2 }, 2, { SHREDDER_REWRAP_KEYS_PER_SECOND: '40' });
    running.push(rotated);
    // under load: old subjects and new ones, while the keys are re-wrapped
    const during = Array.from({ length: 400 }, (_, i) => ({ key: `subject-${i % 80}`, value: `during-${i}` }));
    for (let i = 0; i < during.length; i += 40) {
      await produce(kafka, setup.input, during.slice(i, i + 40));
      await sleep(100);
    }
    const status = await eventually('every live key wrapped by master key 2', async () => {
      const s = await keysStatus(kafka, setup.keysTopic);
      return Object.keys(s.total.live).join() === '2' && s.total.live['2'] === 80 ? s : undefined;
    }, 60_000, 500);
    expect(status.total.superseded['1']).to.equal(60); // the old values, until compaction erases them
    expect(rotated.stats.keysRewrapped).to.equal(60);
    const metrics = await eventually('the per-master-key gauge', async () => {
      const text = await rotated.metrics.text();
      const series = text.split('\n').filter((l) => l.startsWith('shredder_keys_by_master_key{'));
      const sum = (id: string) => series.filter((l) => l.includes(`master_key_id="${id}"`)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      return sum('2') === 80 && sum('1') === 0 ? series : undefined;
    }, 90_000, 500);
    expect(metrics.length).to.be.greaterThan(0);

    // every record opens with master key 2 alone, exactly once, in order per partition
    const total = before.length + during.length;
    const outputs = await readExactly(kafka, setup.output, total);
    const app = await startDecryptingConsumer(setup, { masterKey: undefined, masterKeys: { 2: key2 } });
    running.push(app.consumer);
    const received = await eventually('every record decrypted', async () => (app.received.length >= total ? app.received : undefined), 60_000);
    expect(received.filter((m) => m.status !== 'ok')).to.deep.equal([]);
    expect(received.map((m) => m.value!.toString()).sort()).to.deep.equal([...before, ...during].map((r) => r.value).sort());
    for (const [partition, records] of outputs) {
      const handed = received.filter((m) => m.partition === partition).map((m) => m.offset);
      expect(handed, `partition ${partition}`).to.deep.equal(records.map((r: KafkaMessage) => r.offset));
    }
  });

  it('never brings back a key that a forget racing its re-wrap destroyed', async () => {
    const setup = encryptorSetup();
    const key2 = randomBytes(32);
    const first = await startEncryptor(setup);
    const subjects = Array.from({ length: 200 }, (_, i) => `racer-${i}`);
    await produce(kafka, setup.input, subjects.map((s) => ({ key: s, value: `${s}-record` })));
    await readExactly(kafka, setup.output, subjects.length);
    await first.stop();

    // a slow rotation (about 10 s for 200 keys), and forgets of every other subject meanwhile
    const rotated = await startWithKeyring(setup, { 1: setup.masterKey, 2: key2 }, 2, { SHREDDER_REWRAP_KEYS_PER_SECOND: '20' });
    running.push(rotated);
    const forgotten = subjects.filter((_, i) => i % 2 === 0);
    await forgetSlowly(kafka, setup.input, forgotten, 10, 300);
    const status = await eventually('the rotation done and every forget carried out', async () => {
      const s = await keysStatus(kafka, setup.keysTopic);
      return rotated.stats.forgetRequests === forgotten.length && Object.keys(s.total.live).join() === '2' ? s : undefined;
    }, 90_000, 500);
    expect(status.total.live['2']).to.equal(subjects.length - forgotten.length);
    expect(status.total.forgotten).to.equal(forgotten.length);
    // in the keys topic no forgotten subject has a key after its tombstone, and the race happened both ways
    const keyRecords = allRecords(await readTopic(kafka, setup.keysTopic));
    let rewrappedThenForgotten = 0;
    for (const subject of forgotten) {
      const values = keyRecords.filter((r) => r.key?.toString() === subject).map((r) => (r.value === null ? 'tombstone' : r.value.readUInt32BE(10)));
      expect(values.at(-1), subject).to.equal('tombstone');
      expect(values.indexOf('tombstone'), subject).to.equal(values.length - 1);
      if (values.includes(2)) rewrappedThenForgotten++;
    }
    expect(rotated.stats.keysRewrapped).to.be.at.least(subjects.length - forgotten.length);
    expect(rewrappedThenForgotten, 'forgets after their re-wrap').to.be.greaterThan(0);
    expect(rewrappedThenForgotten, 'forgets before their re-wrap').to.be.below(forgotten.length);

    // a fresh decryptor (a full restore from the keys topic) shreds exactly the forgotten subjects
    const decrypt = decryptorSetup({ ...setup, masterKey: key2 }, { SHREDDER_MASTER_KEY: b64(key2), SHREDDER_MASTER_KEY_ID: '2' });
    running.push(await startDecryptor(decrypt));
    const out = allRecords(await readExactly(kafka, decrypt.output, subjects.length + forgotten.length));
    const shredded = out.filter((r) => r.headers?.['shredder.status']?.toString() === 'shredded').map((r) => r.key!.toString()).sort();
    expect(shredded).to.deep.equal([...forgotten].sort());
    expect(out.filter((r) => r.value !== null).map((r) => r.value!.toString()).sort()).to.deep.equal(subjects.filter((s) => !forgotten.includes(s)).map((s) => `${s}-record`).sort());
  });

  it('dead-letters, with a clear reason, a record whose key a master key missing from the keyring wrapped', async () => {
    const setup = encryptorSetup();
    running.push(await startEncryptor(setup));
    await produce(kafka, setup.input, [{ key: 'kim', value: 'kim-1' }]);
    await readExactly(kafka, setup.output, 1);
    const key2 = randomBytes(32);
    const decrypt = decryptorSetup({ ...setup, masterKey: key2 }, { SHREDDER_MASTER_KEY: b64(key2), SHREDDER_MASTER_KEY_ID: '2' });
    running.push(await startDecryptor(decrypt));
    const [dead] = allRecords(await readExactly(kafka, setup.dlqTopic, 1));
    expect(dead.headers!['shredder.error']!.toString()).to.equal("key unavailable: data key wrapped with master key id 1, which is not in this process's keyring (ids 2)");
    expect(dead.headers!['shredder.error.class']!.toString()).to.equal('KeyUnavailable');
    expect(allRecords(await readTopic(kafka, decrypt.output))).to.have.length(0);
  });

  it('`kafka-shredder keys status` counts the live keys each master key id wraps, per partition, and says what may leave the keyring', async () => {
    const setup = encryptorSetup();
    const first = await startEncryptor(setup);
    await produce(kafka, setup.input, Array.from({ length: 30 }, (_, i) => ({ key: `s-${i}`, value: `v-${i}` })));
    await readExactly(kafka, setup.output, 30);
    await first.stop();
    const rotated = await startWithKeyring(setup, { 1: setup.masterKey, 2: randomBytes(32) }, 2);
    running.push(rotated);
    await produce(kafka, setup.input, Array.from({ length: 10 }, (_, i) => ({ key: `t-${i}`, value: `w-${i}` })));
    await readExactly(kafka, setup.output, 40);
    await eventually('the rotation done', async () => rotated.stats.keysRewrapped === 30, 60_000);
    const env = { PATH: process.env.PATH!, KAFKA_BROKERS: setup.env.KAFKA_BROKERS, SHREDDER_KEYS_TOPIC: setup.keysTopic, SHREDDER_MASTER_KEY_ID: '2' };
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'keys', 'status', ...args], { encoding: 'utf8', env, timeout: 60_000 });
    const json = cli('--json');
    expect(json.status, json.stderr).to.equal(0);
    const status = JSON.parse(json.stdout);
    expect(status.currentMasterKeyId).to.equal(2);
    expect(status.partitions).to.have.length(3);
    expect(status.total).to.deep.include({ live: { 2: 40 }, forgotten: 0, superseded: { 1: 30 } });
    const perPartition = status.partitions.map((p: { live: Record<string, number> }) => p.live['2'] ?? 0);
    const byTopic = await readTopic(kafka, setup.keysTopic);
    expect(perPartition).to.deep.equal([0, 1, 2].map((p) => new Set((byTopic.get(p) ?? []).filter((r) => r.key?.length).map((r) => r.key!.toString())).size));
    const text = cli();
    expect(text.status).to.equal(0);
    expect(text.stdout).to.match(/master key 2 \(current\)/);
    expect(text.stdout).to.contain('master key 1 wraps no live key, but 30 superseded values under it are still in the log');
  });
});
