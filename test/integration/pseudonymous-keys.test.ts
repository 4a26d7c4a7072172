// SHREDDER_RECORD_KEYS=pseudonym against the real broker: the encrypted topic and the keys topic keyed
// by random pseudonyms, each record in its input partition; the decryptor and the library give
// consumers the subject ids back, forget markers included; a new instance restores the pseudonymous
// keys; and, after a forget and the erasure deadline, nothing in the encrypted topic, the keys topic or
// the audit trail equals the subject id or derives from it without a destroyed key: checked with
// node:crypto and docs/wire-format.md alone.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Decryptor } from '../../src/decryptor/decryptor.js';
import type { DecryptedMessage } from '../../src/decryptor/decrypting-consumer.js';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import { subjectPartition } from '../../src/kafka/subject-partition.js';
import { decryptorSetup, startDecryptingConsumer, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, createTopic, eventually, produce, readAtLeast, readTopic, testKafka } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

const PARTITIONS = 3;

/** A master key's derived key for `purpose`, as docs/wire-format.md gives it. */
function derivedKey(masterKey: Buffer, purpose: string): Buffer {
  const gcm = createCipheriv('aes-256-gcm', masterKey, Buffer.alloc(12));
  gcm.setAAD(Buffer.from(`kafka-shredder derived key: ${purpose}`));
  return createHmac('sha256', gcm.update(Buffer.alloc(32))).update(purpose).digest();
}

/** The subject id a v2 keys-topic value carries, opened by hand; undefined for anything else. */
function sealedSubject(value: Buffer | null, masterKey: Buffer): Buffer | undefined {
  if (!value || value[0] !== 0x02 || value.length <= 118) return undefined;
  const gcm = createDecipheriv('aes-256-gcm', derivedKey(masterKey, 'pseudonymous subject v1'), value.subarray(90, 102));
  gcm.setAAD(value.subarray(0, 90));
  gcm.setAuthTag(value.subarray(value.length - 16));
  return Buffer.concat([gcm.update(value.subarray(102, value.length - 16)), gcm.final()]);
}

/** Every byte string a topic holds: record keys, values, header names and values. */
function bytesOf(records: KafkaMessage[]): Buffer[] {
  return records.flatMap((r) => [r.key, r.value, ...Object.entries(r.headers ?? {}).flatMap(([name, v]) => [Buffer.from(name), ...[v].flat().map((x) => (x === undefined ? null : Buffer.from(x)))])]).filter((b): b is Buffer => b !== null);
}

interface Receipt {
  status: string;
  keysTopic: { partitions: { tombstone?: { offset: number }; readableOldKeys: unknown[] }[] };
  audit: { entries: unknown[] };
}

/** `kafka-shredder verify-erasure <subject> --json` beside the encryptor, with its master key. */
function verifyErasure(setup: EncryptorSetup, subject: string): { code: number | null; receipt: Receipt } {
  const run = spawnSync(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'verify-erasure', subject, '--json'], { encoding: 'utf8', env: { PATH: process.env.PATH, ...setup.env }, timeout: 60_000 });
  try {
    return { code: run.status, receipt: JSON.parse(run.stdout) as Receipt };
  } catch {
    throw new Error(`verify-erasure printed no receipt (exit ${run.status}): ${run.stdout}${run.stderr}`);
  }
}

describe('pseudonymous record keys (SHREDDER_RECORD_KEYS=pseudonym)', function () {
  this.timeout(180_000);
  let kafka: Kafka;
  const stops: (() => Promise<void>)[] = [];
  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });
  const started = <T extends Encryptor | Decryptor>(processor: T): T => {
    stops.push(() => processor.stop());
    return processor;
  };

  async function deployment(overrides: Record<string, string> = {}): Promise<EncryptorSetup> {
    const setup = encryptorSetup({ SHREDDER_RECORD_KEYS: 'pseudonym', ...overrides });
    await createTopic(kafka, { topic: setup.input, numPartitions: PARTITIONS });
    return setup;
  }

  it('keys every record and key record by its generation\'s pseudonym, in its input partition; consumers get the subject ids back', async () => {
    const setup = await deployment();
    started(await startEncryptor(setup));
    const subjects = ['alice@example.org', 'bob@example.org', 'carol@example.org', 'dave@example.org'];
    const sent = subjects.flatMap((s) => [1, 2, 3].map((n) => ({ key: s, value: `${s} #${n}` })));
    await produce(kafka, setup.input, sent);
    const encrypted = await readAtLeast(kafka, setup.output, sent.length);

    const pseudonymOf = new Map<string, string>();
    for (const [partition, records] of encrypted) {
      for (const record of records) {
        expect(record.key).to.have.length(16);
        pseudonymOf.set(record.key!.toString('hex'), String(partition));
      }
    }
    // one pseudonym a subject (3 records each), none a subject id
    expect(pseudonymOf.size).to.equal(subjects.length);
    for (const bytes of bytesOf(allRecords(encrypted))) for (const subject of subjects) expect(bytes.includes(subject)).to.equal(false);
    // the keys topic: v2 values under the same pseudonyms, each opening by hand to its subject in the subject's partition
    const keys = await readTopic(kafka, setup.keysTopic);
    const opened = allRecords(keys).map((r) => ({ pseudonym: r.key!.toString('hex'), subject: sealedSubject(r.value, setup.masterKey)!.toString() }));
    expect(opened.map((o) => o.pseudonym).sort()).to.deep.equal([...pseudonymOf.keys()].sort());
    for (const { pseudonym, subject } of opened) expect(pseudonymOf.get(pseudonym)).to.equal(String(subjectPartition(Buffer.from(subject), PARTITIONS)));
    for (const bytes of bytesOf(allRecords(keys))) for (const subject of subjects) expect(bytes.includes(subject)).to.equal(false);

    // the decryptor and the library: subject ids back as record keys, in order per subject
    const decryptor = decryptorSetup(setup);
    started(await startDecryptor(decryptor));
    const decrypted = allRecords(await readAtLeast(kafka, decryptor.output, sent.length));
    for (const subject of subjects) {
      expect(decrypted.filter((r) => r.key!.toString() === subject).map((r) => r.value!.toString())).to.deep.equal([1, 2, 3].map((n) => `${subject} #${n}`));
    }
    const { consumer, received } = await startDecryptingConsumer(setup);
    stops.push(() => consumer.stop());
    await eventually('the library to get every record', async () => received.length >= sent.length);
    expect(received.map((m) => `${m.key!.toString()}|${m.value!.toString()}|${m.status}`).sort()).to.deep.equal(sent.map((s) => `${s.key}|${s.value}|ok`).sort());
  });

  it('in field mode: the record key is the pseudonym even for a record without a selected field; the decryptor gives back key and value', async () => {
    const setup = await deployment({ SHREDDER_FIELDS: '$.email' });
    started(await startEncryptor(setup));
    const sent = [
      { key: 'gina', value: JSON.stringify({ email: 'gina@example.org', total: 1 }) },
      { key: 'gina', value: JSON.stringify({ total: 2 }) }, // nothing to seal, still under her pseudonym
      { key: 'hank', value: JSON.stringify({ email: 'hank@example.org', total: 3 }) },
    ];
    await produce(kafka, setup.input, sent);
    const encrypted = allRecords(await readAtLeast(kafka, setup.output, sent.length));
    expect(encrypted.every((r) => r.key!.length === 16)).to.equal(true);
    expect(new Set(encrypted.map((r) => r.key!.toString('hex'))).size).to.equal(2);
    for (const bytes of bytesOf(encrypted)) for (const needle of ['gina', 'hank']) expect(bytes.includes(needle)).to.equal(false);
    const decryptor = decryptorSetup(setup);
    started(await startDecryptor(decryptor));
    const decrypted = allRecords(await readAtLeast(kafka, decryptor.output, sent.length));
    expect(decrypted.map((r) => `${r.key!.toString()}|${r.value!.toString()}`).sort()).to.deep.equal(sent.map((r) => `${r.key}|${r.value}`).sort());
  });

  it('with SHREDDER_SUBJECT_FIELD: the subject field holds the pseudonym, the producer\'s key stays unless it is the subject id; consumers get both back', async () => {
    const setup = await deployment({ SHREDDER_FIELDS: '$.email', SHREDDER_SUBJECT_FIELD: '$.user' });
    started(await startEncryptor(setup));
    const ivy = 'ivy.i@example.org';
    const jon = 'jon.j@example.org';
    const sent = [
      { key: 'order-1', value: JSON.stringify({ user: ivy, email: 'ivy@home.example', total: 1 }) },
      { key: 'order-2', value: JSON.stringify({ user: jon, email: 'jon@home.example', total: 2 }) },
      { key: 'order-3', value: JSON.stringify({ total: 3, user: ivy }) }, // (nothing to seal but the subject field)
      { key: ivy, value: JSON.stringify({ email: 'ivy@work.example', user: ivy }) }, // (keyed by the subject id itself)
    ];
    await produce(kafka, setup.input, [...sent, { key: 'order-4', value: JSON.stringify({ user: 42, email: 'x@y.example' }) }]);
    const encrypted = allRecords(await readAtLeast(kafka, setup.output, sent.length));
    expect(encrypted).to.have.length(sent.length); // (the numeric subject is dead-lettered: a pseudonym replaces strings only)
    for (const bytes of bytesOf(encrypted)) for (const needle of [ivy, jon, '@home.example', '@work.example']) expect(bytes.includes(needle), needle).to.equal(false);
    expect(encrypted.map((r) => r.key!.toString()).filter((k) => k.startsWith('order-')).sort()).to.deep.equal(['order-1', 'order-2', 'order-3']);
    // every subject field a pseudonym; one a subject and partition (a subject has a key on each partition its records reach)
    const users = encrypted.map((r) => JSON.parse(r.value!.toString()).user as string);
    expect(users.every((u) => /^shp1:[A-Za-z0-9_-]{22}$/.test(u))).to.equal(true);
    for (const [, records] of await readTopic(kafka, setup.output)) {
      const jons = records.filter((r) => r.key!.toString() === 'order-2').map((r) => JSON.parse(r.value!.toString()).user);
      const others = new Set(records.filter((r) => r.key!.toString() !== 'order-2').map((r) => JSON.parse(r.value!.toString()).user));
      expect(others.size).to.be.at.most(1);
      for (const jon of jons) expect(others.has(jon)).to.equal(false);
    }

    const decryptor = decryptorSetup(setup);
    started(await startDecryptor(decryptor));
    const decrypted = allRecords(await readAtLeast(kafka, decryptor.output, sent.length));
    expect(decrypted.map((r) => `${r.key!.toString()}|${r.value!.toString()}`).sort()).to.deep.equal(sent.map((r) => `${r.key}|${r.value}`).sort());
    const dead = allRecords(await readAtLeast(kafka, setup.dlqTopic, 1));
    expect(dead[0].headers!['shredder.error']!.toString()).to.match(/must be a string/);

    // forgotten: her records shredded, her subject field given back while the erasure deadline runs
    await requestForget(kafka, [setup.input], Buffer.from(ivy), { allPartitions: true });
    await readAtLeast(kafka, decryptor.output, sent.length + PARTITIONS);
    const late = decryptorSetup(setup);
    started(await startDecryptor(late));
    const after = allRecords(await readAtLeast(kafka, late.output, sent.length + PARTITIONS)).filter((r) => r.value !== null);
    const shredded = after.filter((r) => r.headers?.['shredder.status']?.toString() === 'shredded');
    expect(shredded.map((r) => `${r.key!.toString()}|${r.value!.toString()}`).sort()).to.deep.equal([`${ivy}|{"email":null,"user":"${ivy}"}`, `order-1|{"user":"${ivy}","email":null,"total":1}`]);
    // (a record with nothing sealed but its subject field stays readable; its field names her until the deadline, as markers do)
    expect(after.filter((r) => !r.headers?.['shredder.status']).map((r) => r.value!.toString()).sort()).to.deep.equal([sent[1].value, sent[2].value].sort());
  });

  it('forgets: the marker and the shredded records reach consumers under the subject id; the next generation has a new pseudonym; a new instance restores the keys', async () => {
    const setup = await deployment();
    const encryptor = started(await startEncryptor(setup));
    await produce(kafka, setup.input, [{ key: 'alice', value: 'alice-1' }, { key: 'bob', value: 'bob-1' }]);
    const before = allRecords(await readAtLeast(kafka, setup.output, 2));
    const decryptor = decryptorSetup(setup);
    started(await startDecryptor(decryptor));
    const { consumer, received } = await startDecryptingConsumer(setup);
    stops.push(() => consumer.stop());
    await readAtLeast(kafka, decryptor.output, 2);

    // alice's and bob's pseudonyms, from the keys topic's values opened by hand
    const pseudonyms = async () => {
      const bySubject = new Map<string, string[]>();
      for (const r of allRecords(await readTopic(kafka, setup.keysTopic))) {
        const subject = sealedSubject(r.value, setup.masterKey)?.toString();
        if (subject) bySubject.set(subject, [...(bySubject.get(subject) ?? []), r.key!.toString('hex')]);
      }
      return bySubject;
    };
    const [alicePseudonym] = (await pseudonyms()).get('alice')!;
    const [bobPseudonym] = (await pseudonyms()).get('bob')!;
    expect(before.map((r) => r.key!.toString('hex')).sort()).to.deep.equal([alicePseudonym, bobPseudonym].sort());

    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    await produce(kafka, setup.input, [{ key: 'alice', value: 'alice-2' }]);
    const after = allRecords(await readAtLeast(kafka, setup.output, 4));
    const marker = after.find((r) => r.value === null)!;
    expect(marker.key!.toString('hex'), "the marker is keyed by the destroyed generation's pseudonym").to.equal(alicePseudonym);
    const newPseudonym = (await pseudonyms()).get('alice')!.at(-1)!;
    expect(newPseudonym).to.not.equal(alicePseudonym); // a new generation, a new pseudonym
    const aliceAfter = after.find((r) => r.key!.toString('hex') === newPseudonym)!;
    expect(aliceAfter).to.not.equal(undefined);

    // consumers: the forget marker under "alice"; her new record readable under "alice"
    const out = allRecords(await readAtLeast(kafka, decryptor.output, 4));
    expect(out.map((r) => [r.key!.toString(), r.value?.toString() ?? null])).to.deep.include.members([['alice', null], ['alice', 'alice-2'], ['bob', 'bob-1'], ['alice', 'alice-1']]);
    const forgetOut = out.find((r) => r.value === null)!;
    expect(forgetOut.key!.toString()).to.equal('alice');
    expect(forgetOut.headers!['shredder.command']!.toString()).to.equal('forget');
    await eventually('the library to get the marker', async () => received.length >= 4);
    const library = (m: DecryptedMessage) => `${m.key!.toString()}|${m.status}`;
    expect(received.map(library)).to.include.members(['alice|forget', 'alice|ok', 'bob|ok']);

    // a fresh decryptor (full restore) reads alice's first record as shredded, under her subject id
    const late = decryptorSetup(setup);
    started(await startDecryptor(late));
    const lateOut = allRecords(await readAtLeast(kafka, late.output, 4));
    expect(lateOut.map((r) => [r.key!.toString(), r.value?.toString() ?? null, r.headers?.['shredder.status']?.toString() ?? r.headers?.['shredder.command']?.toString()])).to.deep.include.members([
      ['alice', null, 'shredded'],
      ['alice', null, 'forget'],
      ['alice', 'alice-2', undefined],
    ]);

    // a new encryptor instance on an empty state dir: the restored keys are used, none made again
    await encryptor.stop();
    stops.splice(0, 1);
    const restored = started(await startEncryptor(setup, mkdtempSync(join(tmpdir(), 'shredder-state-'))));
    await produce(kafka, setup.input, [{ key: 'alice', value: 'alice-3' }, { key: 'bob', value: 'bob-2' }]);
    const all = allRecords(await readAtLeast(kafka, setup.output, 6));
    expect(restored.stats.keysCreated).to.equal(0);
    // (alice-1 and the marker under her first pseudonym, alice-2 and alice-3 under her second, bob's two under his)
    expect(new Set(all.map((r) => r.key!.toString('hex')))).to.deep.equal(new Set([alicePseudonym, newPseudonym, bobPseudonym]));
    const latest = allRecords(await readAtLeast(kafka, decryptor.output, 6));
    expect(latest.map((r) => `${r.key!.toString()}|${r.value?.toString()}`)).to.include.members(['alice|alice-3', 'bob|bob-2']);
  });

  it('after a forget and the erasure deadline, nothing in the encrypted topic, the keys topic or the audit trail equals or derives from the subject id', async () => {
    const setup = await deployment({ SHREDDER_ERASURE_DEADLINE_MS: '4000', SHREDDER_AUDIT_KEY: Buffer.alloc(32, 7).toString('base64') });
    started(await startEncryptor(setup));
    const erin = 'erin.e@example.org';
    await produce(kafka, setup.input, [
      { key: erin, value: 'erin-1', headers: { trace: 'abc' } },
      { key: 'frank', value: 'frank-1' },
      { key: erin, value: 'erin-2' },
    ]);
    await readAtLeast(kafka, setup.output, 3);
    await requestForget(kafka, [setup.input], Buffer.from(erin));
    await readAtLeast(kafka, setup.output, 4);
    // verify-erasure, given the master key, finds her pseudonymous value, its tombstone and its audit entry while compaction is pending
    const pending = verifyErasure(setup, erin);
    if (pending.receipt.status === 'pending') {
      expect(pending.code).to.equal(3);
      expect(pending.receipt.audit.entries).to.have.length(1);
      expect(pending.receipt.keysTopic.partitions[0].tombstone).to.not.equal(undefined);
    } else {
      expect(pending.receipt.status).to.be.oneOf(['erased', 'unknown']); // (compaction already ran)
    }
    // (compaction erases the old value within the deadline: the encryptor's segment roll)
    const subject = Buffer.from(erin);
    const derived = [
      subject,
      Buffer.from(createHmac('sha256', Buffer.alloc(32, 7)).update('kafka-shredder erasure audit reference v1').update(subject).digest('hex')),
      Buffer.from(createHmac('sha256', derivedKey(setup.masterKey, 'log subject reference v1')).update(subject).digest('hex').slice(0, 16)),
      Buffer.from(createHmac('sha256', derivedKey(setup.masterKey, 'erasure audit reference v1')).update('kafka-shredder erasure audit reference v1').update(subject).digest('hex')),
    ];
    await eventually('the keys topic to hold nothing of the subject', async () => {
      const keys = allRecords(await readTopic(kafka, setup.keysTopic));
      return !keys.some((r) => sealedSubject(r.value, setup.masterKey)?.equals(subject));
    }, 90_000, 1000);
    const topics = [setup.output, setup.keysTopic, setup.config.auditTopic];
    const everything = (await Promise.all(topics.map(async (t) => bytesOf(allRecords(await readTopic(kafka, t)))))).flat();
    for (const bytes of everything) for (const needle of derived) expect(bytes.includes(needle), `${needle.toString()} in a topic`).to.equal(false);
    // the audit trail still records the erasure, naming only the destroyed generation
    const [entry] = allRecords(await readTopic(kafka, setup.config.auditTopic)).map((r) => JSON.parse(r.value!.toString()));
    expect(entry).to.not.have.property('subject');
    expect(entry.keyDestroyed.keyIds).to.have.length(1);
    // once compacted, nothing links her to anything: verify-erasure finds no trace of her
    const after = verifyErasure(setup, erin);
    expect(after.receipt.status, JSON.stringify(after.receipt)).to.be.oneOf(['unknown', 'erased']);
    expect(after.receipt.keysTopic.partitions.every((p) => p.readableOldKeys.length === 0)).to.equal(true);
    expect(verifyErasure(setup, 'frank').receipt.status).to.equal('not-forgotten');
    // frank is untouched, his key still opens to him
    expect(allRecords(await readTopic(kafka, setup.keysTopic)).some((r) => sealedSubject(r.value, setup.masterKey)?.toString() === 'frank')).to.equal(true);
  });
});
