// Junk in the keys topic against the real broker (issue 27): values of every odd length, of an unknown
// version or algorithm, forged, under an unknown master key id, copied to another subject, and a value
// under the empty record key. Every reader of the keys topic opens every partition, on a kept and on a
// wiped state dir; other subjects' records are sealed and opened as before; the junk subjects' records
// are dead-lettered "key unavailable"; no junk value is ever overwritten (re-wrapped, or replaced by a
// new key) except by a forget; keys status and verify-erasure answer; the counter is on /metrics.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { loadConfig } from '../../src/config/config.js';
import type { Decryptor } from '../../src/decryptor/decryptor.js';
import { Encryptor } from '../../src/encryptor/encryptor.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Readiness } from '../../src/observability/health.js';
import { Reencryptor } from '../../src/reencryptor/reencryptor.js';
import { startChildProcessor } from '../support/child-processor.js';
import { decryptorSetup, startDecryptingConsumer, startDecryptor, type DecryptorSetup } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { freePort, get } from '../support/http.js';
import { allRecords, eventually, produce, readExactly, readTopic, testKafka, uniqueName } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

const METRIC = 'shredder_keys_topic_invalid_values_total';
const GOOD = Array.from({ length: 30 }, (_, i) => `good-${i}`);

interface Junk {
  subject: string;
  /** The junk value, made from the subject's own valid value and another subject's. */
  value: (own: Buffer, donor: Buffer) => Buffer;
  /** The dead letter's reason for the subject's records: exact, or (authentication failures) its start. */
  reason: string | RegExp;
}

const withByte = (value: Buffer, at: number, byte: number) => Buffer.concat([value.subarray(0, at), Buffer.from([byte]), value.subarray(at + 1)]);
const KEY_UNAVAILABLE = /^key unavailable: /;

/** Junk values under subjects that have records; each subject's keys partition is its input partition (both murmur2). */
const JUNK: Junk[] = [
  { subject: 'junk-empty', value: () => Buffer.alloc(0), reason: 'key unavailable: wrapped key must be 74 bytes, got 0' },
  { subject: 'junk-1', value: () => Buffer.from([0x01]), reason: 'key unavailable: wrapped key must be 74 bytes, got 1' },
  { subject: 'junk-73', value: (own) => own.subarray(0, 73), reason: 'key unavailable: wrapped key must be 74 bytes, got 73' },
  { subject: 'junk-75', value: (own) => Buffer.concat([own, Buffer.from([0])]), reason: 'key unavailable: wrapped key must be 74 bytes, got 75' },
  { subject: 'junk-100', value: () => Buffer.concat([Buffer.from([0x01]), randomBytes(99)]), reason: 'key unavailable: wrapped key must be 74 bytes, got 100' },
  { subject: 'junk-1mb', value: () => Buffer.concat([Buffer.from([0x01]), randomBytes(999_999)]), reason: 'key unavailable: wrapped key must be 74 bytes, got 1000000' },
  { subject: 'junk-v3', value: (own) => withByte(own, 0, 0x03), reason: 'key unavailable: unknown wrapped key version 0x03' },
  { subject: 'junk-v3-long', value: () => Buffer.concat([Buffer.from([0x03]), randomBytes(199)]), reason: 'key unavailable: unknown wrapped key version 0x03' },
  // a pseudonymous value (0x02) by its shape, under a subject id and of no master key: kept as the subject's last value, as any junk
  { subject: 'junk-v2-long', value: () => Buffer.concat([Buffer.from([0x02, 0x01]), randomBytes(198)]), reason: KEY_UNAVAILABLE },
  { subject: 'junk-algorithm', value: (own) => withByte(own, 1, 0x09), reason: 'key unavailable: unknown data key algorithm 0x09' },
  { subject: 'junk-forged', value: (own) => withByte(own, 73, own[73] ^ 0x01), reason: KEY_UNAVAILABLE },
  { subject: 'junk-master', value: (own) => Buffer.concat([own.subarray(0, 10), Buffer.from([0, 0, 0, 99]), own.subarray(14)]), reason: /^key unavailable: .*master key id 99/ },
  { subject: 'junk-copy', value: (_, donor) => donor, reason: KEY_UNAVAILABLE },
];
/** What the readers count when they restore all of the above: structural problems only (authenticity shows at unwrap time). */
const COUNTED = { length: 6 + 3 + 1, version: 2, algorithm: 1, key: 1 }; // (+3: a 100-byte value on each partition; +1: a long binary subject; below)

/** The sum of a metric's series that carry every one of `labels`. */
function sumSeries(text: string, name: string, ...labels: string[]): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** The counter of a reader that restored the junk once: each record counted once, by its reason. */
function expectCounted(metrics: string, topic: string): void {
  for (const [reason, n] of Object.entries(COUNTED)) expect(sumSeries(metrics, METRIC, `topic="${topic}"`, `reason="${reason}"`), `${METRIC}{reason="${reason}"}`).to.equal(n);
  expect(sumSeries(metrics, METRIC)).to.equal(Object.values(COUNTED).reduce((a, b) => a + b));
}

const text = (m: KafkaMessage, header: string) => m.headers?.[header]?.toString();

/** Every junk subject's record dead-lettered once, as it was read (`valueOf`), with its reason, class KeyUnavailable. */
function expectJunkDeadLetters(dead: KafkaMessage[], valueOf: (subject: string) => string | Buffer): void {
  expect(dead.map((d) => d.key!.toString()).sort()).to.deep.equal(JUNK.map((j) => j.subject).sort());
  for (const junk of JUNK) {
    const letter = dead.find((d) => d.key!.toString() === junk.subject)!;
    expect(letter.value!.equals(Buffer.from(valueOf(junk.subject))), junk.subject).to.equal(true);
    expect(text(letter, 'shredder.error.class'), junk.subject).to.equal('KeyUnavailable');
    if (typeof junk.reason === 'string') expect(text(letter, 'shredder.error'), junk.subject).to.equal(junk.reason);
    else expect(text(letter, 'shredder.error'), junk.subject).to.match(junk.reason);
  }
}

async function everyPartitionReady(what: string, readiness: () => Readiness): Promise<void> {
  await eventually(`${what}: every partition ready`, async () => {
    const r = readiness();
    return r.ready && r.partitions.length === 3 && r.partitions.every((p) => p.state === 'ready');
  }, 60_000, 200);
}

/** Each subject's last value in the keys topic (null: a tombstone), read from the topic. */
async function lastValues(kafka: Kafka, keysTopic: string): Promise<Map<string, Buffer | null>> {
  const last = new Map<string, Buffer | null>();
  for (const record of allRecords(await readTopic(kafka, keysTopic))) if (record.key?.length) last.set(record.key.toString(), record.value);
  return last;
}

describe('junk in the keys topic', function () {
  this.timeout(240_000);
  let kafka: Kafka;
  let setup: EncryptorSetup;
  /** A decryptor that read the keys topic before the junk came: its state dir is kept. */
  let keptDecryptor: DecryptorSetup;
  /** The junk values written, by subject. */
  const written = new Map<string, Buffer>();
  const running: { stop(): Promise<void> }[] = [];

  before(async () => {
    kafka = testKafka();
    setup = encryptorSetup();
    keptDecryptor = decryptorSetup(setup, { SHREDDER_DLQ_TOPIC: uniqueName('dlq-kept') });
    const encryptor = await startEncryptor(setup);
    const decryptor = await startDecryptor(keptDecryptor);
    await produce(kafka, setup.input, GOOD.map((s) => ({ key: s, value: `${s}-1` })));
    await readExactly(kafka, keptDecryptor.output, GOOD.length);
    await decryptor.stop();
    // the junk subjects get keys of their own, and a record each, before their values are spoilt
    await produce(kafka, setup.input, JUNK.map((j) => ({ key: j.subject, value: `${j.subject}-1` })));
    await readExactly(kafka, setup.output, GOOD.length + JUNK.length);
    await encryptor.stop();

    const valid = await lastValues(kafka, setup.keysTopic);
    const donor = valid.get('good-0')!;
    for (const junk of JUNK) written.set(junk.subject, junk.value(valid.get(junk.subject)!, donor));
    await produce(kafka, setup.keysTopic, [
      ...JUNK.map((j) => ({ key: j.subject, value: written.get(j.subject)! })),
      // the value on every partition, and a value under the empty record key (not a subject)
      ...[0, 1, 2].map((partition) => ({ key: `junk-partition-${partition}`, value: Buffer.concat([Buffer.from([0x01]), randomBytes(99)]), partition })),
      { key: Buffer.alloc(0), value: randomBytes(100), partition: 1 },
      // a subject of 100 kB of arbitrary bytes (not text), with a 1-byte value
      { key: randomBytes(100_000), value: Buffer.from([0x01]), partition: 2 },
    ]);
  });

  afterEach(async () => {
    for (const processor of running.splice(0).reverse()) await processor.stop();
  });

  it('the encryptor opens every partition on a kept and on a wiped state dir, seals other subjects as before, dead-letters the junk subjects, and writes no key over their values', async () => {
    const kept = await startEncryptor(setup);
    running.push(kept);
    await everyPartitionReady('encryptor, kept state dir', () => kept.readiness());
    expectCounted(await kept.metrics.text(), setup.keysTopic);
    const fresh = Array.from({ length: 10 }, (_, i) => `new-${i}`);
    await produce(kafka, setup.input, [...GOOD, ...fresh, ...JUNK.map((j) => j.subject)].map((s) => ({ key: s, value: `${s}-2` })));
    expectJunkDeadLetters(allRecords(await readExactly(kafka, setup.dlqTopic, JUNK.length)), (s) => `${s}-2`);
    await readExactly(kafka, setup.output, GOOD.length + JUNK.length + GOOD.length + fresh.length);
    expect(kept.stats.keysCreated).to.equal(fresh.length);
    await kept.stop();
    running.pop();

    const wiped = await startEncryptor(setup, mkdtempSync(join(tmpdir(), 'shredder-state-')));
    running.push(wiped);
    await everyPartitionReady('encryptor, wiped state dir', () => wiped.readiness());
    expectCounted(await wiped.metrics.text(), setup.keysTopic);
    await produce(kafka, setup.input, [...GOOD, ...JUNK.map((j) => j.subject)].map((s) => ({ key: s, value: `${s}-3` })));
    const dead = allRecords(await readExactly(kafka, setup.dlqTopic, 2 * JUNK.length));
    expectJunkDeadLetters(dead.filter((d) => d.value!.toString().endsWith('-3')), (s) => `${s}-3`);
    await readExactly(kafka, setup.output, GOOD.length + JUNK.length + 2 * GOOD.length + fresh.length);
    expect(wiped.stats.keysCreated).to.equal(0);

    // every junk value is still its subject's last value, byte for byte: no new key was written over it
    const last = await lastValues(kafka, setup.keysTopic);
    for (const junk of JUNK) expect(last.get(junk.subject)!.equals(written.get(junk.subject)!), junk.subject).to.equal(true);
  });

  it('the decryptor (kept and wiped state dirs, the wiped one as the CLI with /metrics) and the DecryptingConsumer open every partition, open other subjects\' records and dead-letter the junk subjects\'', async () => {
    const encrypted = allRecords(await readTopic(kafka, setup.output));
    const opened = encrypted.filter((r) => !r.key!.toString().startsWith('junk-'));
    const expected = opened.map((r) => `${r.key!.toString()}/${r.offset}`).sort();
    const encryptedOf = new Map(encrypted.map((r) => [r.key!.toString(), r.value!]));
    const plaintexts = (records: KafkaMessage[]) => records.map((r) => `${r.key!.toString()}: ${r.value?.toString()}`).sort();

    // kept: it decrypted the good subjects' first records before the junk came, and resumes from there
    const kept = await startDecryptor(keptDecryptor);
    running.push(kept as Decryptor);
    await everyPartitionReady('decryptor, kept state dir', () => kept.readiness());
    // (the junk subjects' records were sealed before their values were spoilt: as read, encrypted)
    expectJunkDeadLetters(allRecords(await readExactly(kafka, keptDecryptor.config.dlqTopic, JUNK.length)), (s) => encryptedOf.get(s)!);
    const keptOut = allRecords(await readExactly(kafka, keptDecryptor.output, opened.length));
    // every other subject's record opened (its values are `<subject>-<n>`), none shredded
    for (const record of keptOut) expect(record.value?.toString(), record.key!.toString()).to.match(new RegExp(`^${record.key!.toString()}-\\d$`));
    expectCounted(await kept.metrics.text(), setup.keysTopic);

    // wiped, as an operator runs it: /readyz, and the counter on /metrics
    const port = await freePort();
    const wiped = decryptorSetup(setup, { SHREDDER_DLQ_TOPIC: uniqueName('dlq-wiped'), SHREDDER_HTTP_PORT: String(port), SHREDDER_LOG_LEVEL: 'info' });
    const child = startChildProcessor('decrypt', wiped.env);
    try {
      const ready = await eventually('/readyz ready', async () => {
        const answer = await get(port, '/readyz').catch(() => undefined);
        return answer?.status === 200 ? JSON.parse(answer.body) : undefined;
      }, 60_000);
      expect(ready.partitions.map((p: { partition: number; state: string }) => [p.partition, p.state])).to.deep.equal([[0, 'ready'], [1, 'ready'], [2, 'ready']]);
      expectJunkDeadLetters(allRecords(await readExactly(kafka, wiped.config.dlqTopic, JUNK.length)), (s) => encryptedOf.get(s)!);
      const out = allRecords(await readExactly(kafka, wiped.output, opened.length));
      expect(plaintexts(out)).to.deep.equal(plaintexts(keptOut));
      expectCounted((await get(port, '/metrics')).body, setup.keysTopic);
      // logged once per subject, by its reference, with the reason; never the subject id
      const lines = child.logs.filter((l) => l.msg === "unreadable keys-topic value kept as it is: the subject's records are dead-lettered (key unavailable) until it is forgotten or given a readable value");
      expect(lines).to.have.length(COUNTED.length + COUNTED.version + COUNTED.algorithm); // (one per subject)
      expect(lines.every((l) => typeof l.subject === 'string' && /^[0-9a-f]{16}$/.test(l.subject as string) && typeof l.reason === 'string')).to.equal(true);
      expect(child.logs.filter((l) => l.msg === 'keys-topic record without a subject skipped')).to.have.length(1);
      expect(child.output()).not.to.contain('junk-');
      expect(child.output()).not.to.contain('good-');
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
    }

    // the library, in process
    const app = await startDecryptingConsumer(setup, { dlqTopic: uniqueName('dlq-app') });
    running.push(app.consumer);
    const received = await eventually('the application handed every readable record', async () => (app.received.length >= opened.length ? app.received : undefined), 60_000);
    expect(received.map((m) => `${m.key!.toString()}/${m.offset}`).sort()).to.deep.equal(expected);
    expect(received.filter((m) => m.status !== 'ok')).to.deep.equal([]);
    expectCounted(await app.consumer.metrics.text(), setup.keysTopic);
  });

  it('reencrypt reads a source keys topic holding junk: it opens every partition, carries other subjects over and dead-letters the junk subjects\' records', async () => {
    const encrypted = allRecords(await readTopic(kafka, setup.output));
    const opened = encrypted.filter((r) => !r.key!.toString().startsWith('junk-'));
    const target = uniqueName('encrypted-v2');
    const env: Record<string, string> = {
      ...setup.env,
      SHREDDER_ROUTES: `${setup.output}->${target}`,
      SHREDDER_SOURCE_KEYS_TOPIC: setup.keysTopic,
      SHREDDER_KEYS_TOPIC: uniqueName('keys-v2'),
      SHREDDER_DLQ_TOPIC: uniqueName('dlq-reencrypt'),
      SHREDDER_GROUP_ID: uniqueName('reencrypt'),
      SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-reencrypt-')),
    };
    const config = loadConfig('reencrypt', env);
    const reencryptor = new Reencryptor(config, createLogger(config.logLevel));
    await reencryptor.start();
    running.push(reencryptor);
    await everyPartitionReady('reencrypt', () => reencryptor.readiness());
    const migrated = allRecords(await readExactly(kafka, target, opened.length));
    expect(migrated.map((r) => r.key!.toString()).sort()).to.deep.equal(opened.map((r) => r.key!.toString()).sort());
    // (dead-lettered as they were read: still encrypted)
    const encryptedOf = new Map(encrypted.map((r) => [r.key!.toString(), r.value!]));
    expectJunkDeadLetters(allRecords(await readExactly(kafka, config.dlqTopic, JUNK.length)), (s) => encryptedOf.get(s)!);
    expectCounted(await reencryptor.metrics.text(), setup.keysTopic);
  });

  it('a rotation re-wraps the readable keys and leaves every junk value alone; a forget replaces one; keys status and verify-erasure answer', async () => {
    const key2 = randomBytes(32);
    const env: Record<string, string> = {
      ...setup.env,
      SHREDDER_MASTER_KEY: '',
      SHREDDER_MASTER_KEYS: `1:${setup.masterKey.toString('base64')},2:${key2.toString('base64')}`,
      SHREDDER_MASTER_KEY_ID: '2',
      SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-state-')),
      SHREDDER_REWRAP_KEYS_PER_SECOND: '200',
    };
    const rotated = new Encryptor(loadConfig('encrypt', env), createLogger(setup.config.logLevel));
    await rotated.start();
    running.push(rotated);
    await everyPartitionReady('rotating encryptor', () => rotated.readiness());
    const status = (args: string[] = []) =>
      spawnSync(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'keys', 'status', '--json', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH!, KAFKA_BROKERS: env.KAFKA_BROKERS, SHREDDER_KEYS_TOPIC: setup.keysTopic, SHREDDER_MASTER_KEY_ID: '2' }, timeout: 60_000 });
    // every readable key moves to master key 2; the forged and the copied value (under id 1) and the one under id 99 cannot
    const total = await eventually('the rotation done', async () => {
      const run = status();
      expect(run.status, run.stderr).to.equal(0);
      const t = JSON.parse(run.stdout).total;
      return t.live['1'] === 2 && t.live['99'] === 1 && (t.live['2'] ?? 0) > 0 && rotated.stats.keysRewrapped === t.live['2'] ? t : undefined;
    }, 60_000, 1000);
    expect(total.unreadable).to.equal(COUNTED.length + COUNTED.version + COUNTED.algorithm); // (the subjects whose last value is structurally junk)
    expect(rotated.health().live).to.equal(true);
    const last = await lastValues(kafka, setup.keysTopic);
    for (const junk of JUNK) expect(last.get(junk.subject)!.equals(written.get(junk.subject)!), junk.subject).to.equal(true);

    // a forget destroys a value of a later format, and the subject's next record gets a new key
    await requestForget(kafka, [setup.input], Buffer.from('junk-v3'));
    await requestForget(kafka, [setup.input], Buffer.from('junk-1'));
    // (junk shaped like a pseudonymous value, under the subject id: its tombstone goes there, not under the junk's "pseudonym")
    await requestForget(kafka, [setup.input], Buffer.from('junk-v2-long'));
    await eventually('the forgets carried out', async () => rotated.stats.forgetRequests === 3, 30_000);
    await produce(kafka, setup.input, [{ key: 'junk-v3', value: 'junk-v3-after' }]);
    await eventually('a new key for junk-v3', async () => rotated.stats.keysCreated === 1, 30_000);
    const after = await lastValues(kafka, setup.keysTopic);
    expect(after.get('junk-1')).to.equal(null);
    expect(after.get('junk-v2-long')).to.equal(null);
    expect(after.get('junk-v3')!.length).to.equal(74);
    expect(after.get('junk-v3')![0]).to.equal(0x01);

    // verify-erasure reads the unreadable values as such, and finds no destroyed key where there is none
    const verify = (subject: string) =>
      spawnSync(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'verify-erasure', subject, '--json'], { encoding: 'utf8', env: { PATH: process.env.PATH!, ...env }, timeout: 60_000 });
    for (const subject of ['junk-1', 'junk-v3', 'junk-master']) {
      const run = verify(subject);
      let receipt;
      try {
        receipt = JSON.parse(run.stdout);
      } catch {
        throw new Error(`verify-erasure ${subject} printed no JSON (exit ${run.status}):\n${run.stdout}${run.stderr}`);
      }
      if (subject === 'junk-master') {
        expect(receipt.status).to.equal('not-forgotten');
        continue;
      }
      expect(receipt.status, subject).to.equal('pending'); // (the values before the forget are in the log until compaction)
      const [partition] = receipt.keysTopic.partitions;
      expect(partition.localStore.holdsOldKey, subject).to.equal(false);
      expect(partition.readableOldKeys.filter((k: { unreadable?: string }) => k.unreadable).length, subject).to.equal(1);
      if (subject === 'junk-v3') expect(partition.liveKeyAfterForget.keyId).to.match(/^[0-9a-f]{16}$/);
    }
  });

  it('a decrypting consumer following the keys topic takes junk written while it runs, and dead-letters that subject\'s later records', async () => {
    const own = encryptorSetup(); // (a deployment of its own: the one above has been rotated to master key 2)
    const encryptor = await startEncryptor(own);
    running.push(encryptor);
    const dlqTopic = uniqueName('dlq-follow');
    const app = await startDecryptingConsumer(own, { dlqTopic });
    running.push(app.consumer);
    await everyPartitionReady('decrypting consumer', () => app.consumer.readiness());
    await produce(kafka, own.input, [{ key: 'late', value: 'late-1' }]);
    await eventually('late-1 handed out', async () => app.received.some((m) => m.value?.toString() === 'late-1'), 30_000);

    // someone else writes junk over the subject's key while both run
    await produce(kafka, own.keysTopic, [{ key: 'late', value: Buffer.concat([Buffer.from([0x01]), randomBytes(99)]) }]);
    await eventually('the junk counted by the follower', async () => sumSeries(await app.consumer.metrics.text(), METRIC, `topic="${own.keysTopic}"`, 'reason="length"') === 1, 30_000);
    // (the encryptor reads the keys topic when a task opens: until then it seals under the key it holds)
    await produce(kafka, own.input, [{ key: 'late', value: 'late-2' }]);
    const [dead] = allRecords(await readExactly(kafka, dlqTopic, 1));
    expect(text(dead, 'shredder.error')).to.equal('key unavailable: wrapped key must be 74 bytes, got 100');
    expect(app.received.filter((m) => m.key?.toString() === 'late').map((m) => m.value?.toString())).to.deep.equal(['late-1']);
    expect(app.consumer.health().live).to.equal(true);
  });
});
