// The decryptor and the in-process decrypting consumer against a real broker: plaintext back exactly,
// the race between a record and its key, forget mid-stream, and every kind of bad input.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { loadCryptoCore } from '../../src/crypto/index.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { envelopeAad, envelopeHeader } from '../../src/wire/envelope.js';
import type { IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { DecryptingConsumer, type DecryptedMessage } from '../../src/decryptor/decrypting-consumer.js';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import { decryptingConsumerOptions, decryptorSetup, startDecryptingConsumer, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, eventually, produce, readExactly, readTopic, testKafka, uniqueName, withSlowKeysReader } from '../support/kafka.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const all = allRecords;
const text = (value: Buffer | null | undefined) => (value == null ? null : value.toString());
const header = (headers: IHeaders | undefined, name: string) => text(headers?.[name] as Buffer | undefined);



async function receivedCount(received: DecryptedMessage[], count: number): Promise<DecryptedMessage[]> {
  return eventually(`${count} records handed to the application`, async () => {
    if (received.length > count) throw new Error(`${received.length} records handed over, expected ${count}`);
    return received.length === count ? received : undefined;
  }, 60_000);
}

describe('decryptor', function () {
  this.timeout(180_000);
  let kafka: Kafka;
  let setup: EncryptorSetup;
  const running: { stop(): Promise<void> }[] = [];
  const started = <T extends { stop(): Promise<void> }>(processor: T): T => {
    running.push(processor);
    return processor;
  };

  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop().catch(() => {})));
  });

  it('decrypts the encrypted stream to exactly the input, in order per partition, with key, timestamp and headers', async () => {
    setup = encryptorSetup();
    started(await startEncryptor(setup));
    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const app = await startDecryptingConsumer(setup);
    started(app.consumer);

    const sent = Array.from({ length: 90 }, (_, i) => ({ key: `user-${i % 9}`, value: `{"n":${i},"name":"Person ${i % 9}"}`, headers: { 'trace-id': `t-${i}` } }));
    await produce(kafka, setup.input, sent);
    const inputs = await readTopic(kafka, setup.input);
    const outputs = await readExactly(kafka, decrypt.output, sent.length);
    const handed = await receivedCount(app.received, sent.length);
    for (const [partition, records] of inputs) {
      const out = outputs.get(partition) ?? [];
      expect(out.map((r) => text(r.value)), `partition ${partition}`).to.deep.equal(records.map((r) => text(r.value)));
      expect(out.map((r) => text(r.key))).to.deep.equal(records.map((r) => text(r.key)));
      expect(out.map((r) => r.timestamp)).to.deep.equal(records.map((r) => r.timestamp));
      expect(out.map((r) => header(r.headers, 'trace-id'))).to.deep.equal(records.map((r) => header(r.headers, 'trace-id')));
      const inApp = handed.filter((m) => m.partition === partition);
      expect(inApp.map((m) => m.status)).to.deep.equal(records.map(() => 'ok'));
      expect(inApp.map((m) => text(m.value))).to.deep.equal(records.map((r) => text(r.value)));
    }
  });

  it('keeps its group membership through a batch that outlasts the 10 s session (a slow application handler): every record handed over once', async () => {
    setup = encryptorSetup();
    started(await startEncryptor(setup));
    const sent = Array.from({ length: 30 }, (_, i) => ({ key: `slow-user-${i % 5}`, value: `event ${i}` }));
    await produce(kafka, setup.input, sent);
    await readExactly(kafka, setup.output, sent.length);
    const received: DecryptedMessage[] = [];
    let slowBatches = 0;
    const slow = started(new DecryptingConsumer(decryptingConsumerOptions(setup)));
    await slow.run({
      eachBatch: async (messages) => {
        // the first batch takes longer than the session timeout, without a heartbeat of its own
        if (slowBatches++ === 0) await sleep(13_000);
        received.push(...messages);
      },
    });
    const handed = await receivedCount(received, sent.length);
    await sleep(3_000); // (a batch read again after a lost membership would arrive now)
    expect(received).to.have.length(sent.length);
    expect(new Set(handed.map((m) => `${m.partition}/${m.offset}`)).size).to.equal(sent.length);
    expect(handed.map((m) => text(m.value)).sort()).to.deep.equal(sent.map((m) => m.value).sort());
  });

  it('opens both algorithms of the contract, by the algorithm byte of each record', async () => {
    setup = encryptorSetup({ SHREDDER_ALGORITHM: 'aes-256-gcm' });
    const aesEncryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [{ key: 'aes-user', value: 'sealed with AES-256-GCM' }]);
    await readExactly(kafka, setup.output, 1);
    await aesEncryptor.stop();
    // the same deployment switched to ChaCha20-Poly1305: new subjects get it, old keys keep their algorithm
    setup = { ...setup, config: { ...setup.config, algorithm: 1 } };
    started(await startEncryptor(setup));
    await produce(kafka, setup.input, [{ key: 'chacha-user', value: 'sealed with ChaCha20-Poly1305' }, { key: 'aes-user', value: 'still AES' }]);
    const encrypted = all(await readExactly(kafka, setup.output, 3));
    expect(encrypted.map((r) => r.value![1]).sort()).to.deep.equal([1, 2, 2]);
    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const out = all(await readExactly(kafka, decrypt.output, 3));
    expect(out.map((r) => text(r.value)).sort()).to.deep.equal(['sealed with AES-256-GCM', 'sealed with ChaCha20-Poly1305', 'still AES']);
  });

  it('never reports a record shredded because the keys topic lags: it waits for the key', async () => {
    setup = encryptorSetup();
    started(await startEncryptor(setup));
    const slowKafka = withSlowKeysReader(testKafka('slow-keys'), 1500);
    const decrypt = decryptorSetup(setup);
    const decryptor = started(await startDecryptor(decrypt, slowKafka));
    // every wave brings subjects never seen: each record's key is created in its own transaction
    const waves = 5;
    for (let wave = 0; wave < waves; wave++) {
      await produce(kafka, setup.input, Array.from({ length: 20 }, (_, i) => ({ key: `wave-${wave}-user-${i}`, value: `w${wave}-e${i}` })));
      await sleep(300);
    }
    const inputs = await readTopic(kafka, setup.input);
    const outputs = await readExactly(kafka, decrypt.output, waves * 20, 90_000);
    for (const [partition, records] of inputs) {
      const out = outputs.get(partition) ?? [];
      expect(out.filter((r) => header(r.headers, 'shredder.status') === 'shredded').length, 'records reported shredded').to.equal(0);
      expect(out.map((r) => text(r.value)), `partition ${partition}`).to.deep.equal(records.map((r) => text(r.value)));
    }
    expect(decryptor.stats.shredded).to.equal(0);
    expect(decryptor.stats.keyWaits, 'batches that met a key not read yet').to.be.greaterThan(0);
  });

  it('waits for a key whose transaction is not yet committed on the keys partition (markers land partition by partition)', async () => {
    setup = encryptorSetup();
    const decrypt = decryptorSetup(setup);
    const decryptor = started(await startDecryptor(decrypt));
    await eventually('partitions restored', async () => decryptor.readiness().ready, 60_000);
    // what the encryptor writes for a new subject, by hand: the key record in a transaction left open,
    // as when the data partition's commit marker is written and the keys partition's is not yet
    const subject = Buffer.from('late-key-subject');
    const dataKey = MasterKey.newDataKey(1);
    const head = envelopeHeader(1, dataKey.keyId, randomBytes(12));
    const [sealed] = (await loadCryptoCore()).sealBatch([{ key: dataKey.key, nonce: head.subarray(10, 22), aad: envelopeAad(head, subject), plaintext: Buffer.from('worth the wait') }]);
    const keysProducer = kafka.producer({ transactionalId: uniqueName('fake-encryptor'), idempotent: true, maxInFlightRequests: 1 });
    await keysProducer.connect();
    const transaction = await keysProducer.transaction();
    try {
      await transaction.send({ topic: setup.keysTopic, messages: [{ key: subject, value: Buffer.from(new MasterKey(setup.masterKey, 1).wrap(subject, dataKey)), partition: 1 }] });
      await produce(kafka, setup.output, [{ key: subject, value: Buffer.concat([head, sealed]), partition: 1 }]);
      await new Promise((r) => setTimeout(r, 2000));
      expect(allRecords(await readTopic(kafka, decrypt.output)), 'nothing decided while the key is uncommitted').to.deep.equal([]);
      await transaction.commit();
    } finally {
      await keysProducer.disconnect();
    }
    const [record] = allRecords(await readExactly(kafka, decrypt.output, 1));
    expect(text(record.value)).to.equal('worth the wait');
    expect(header(record.headers, 'shredder.status')).to.equal(null);
  });

  it('forget mid-stream: the application gets one forget, then earlier records are shredded everywhere', async () => {
    setup = encryptorSetup();
    started(await startEncryptor(setup));
    const live = await startDecryptingConsumer(setup);
    started(live.consumer);
    await produce(kafka, setup.input, ['alice-1', 'bob-1', 'alice-2', 'bob-2', 'alice-3'].map((v) => ({ key: v.split('-')[0], value: v })));
    await receivedCount(live.received, 5);
    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    await produce(kafka, setup.input, ['alice-4', 'bob-3'].map((v) => ({ key: v.split('-')[0], value: v })));
    await readExactly(kafka, setup.output, 8);

    const summary = (messages: { key: Buffer | null; status: string; value: Buffer | null }[], subject: string) =>
      messages.filter((m) => text(m.key) === subject).map((m) => (m.status === 'ok' ? text(m.value) : m.status));
    // the application that was running: it saw alice's records, then exactly one forget
    await receivedCount(live.received, 8);
    expect(summary(live.received, 'alice')).to.deep.equal(['alice-1', 'alice-2', 'alice-3', 'forget', 'alice-4']);
    expect(summary(live.received, 'bob')).to.deep.equal(['bob-1', 'bob-2', 'bob-3']);

    // a fresh application, a marker decryptor, a skip decryptor, a dead-letter decryptor
    const fresh = await startDecryptingConsumer(setup);
    started(fresh.consumer);
    const marker = decryptorSetup(setup);
    const skip = decryptorSetup(setup, { SHREDDER_ON_SHREDDED: 'skip' });
    const dlq = decryptorSetup(setup, { SHREDDER_ON_SHREDDED: 'dlq', SHREDDER_DLQ_TOPIC: uniqueName('dlq') });
    for (const processor of await Promise.all([marker, skip, dlq].map((s) => startDecryptor(s)))) started(processor);

    await receivedCount(fresh.received, 8);
    expect(summary(fresh.received, 'alice')).to.deep.equal(['shredded', 'shredded', 'shredded', 'forget', 'alice-4']);
    expect(summary(fresh.received, 'bob')).to.deep.equal(['bob-1', 'bob-2', 'bob-3']);

    const asStatus = (r: KafkaMessage) =>
      header(r.headers, 'shredder.status') ?? (header(r.headers, 'shredder.command') === 'forget' ? 'forget' : text(r.value));
    const markerOut = all(await readExactly(kafka, marker.output, 8));
    expect(markerOut.filter((r) => text(r.key) === 'alice').map(asStatus)).to.deep.equal(['shredded', 'shredded', 'shredded', 'forget', 'alice-4']);
    expect(markerOut.filter((r) => header(r.headers, 'shredder.status') === 'shredded').every((r) => r.value === null)).to.equal(true);
    const skipOut = all(await readExactly(kafka, skip.output, 5));
    expect(skipOut.filter((r) => text(r.key) === 'alice').map(asStatus)).to.deep.equal(['forget', 'alice-4']);
    const dlqOut = all(await readExactly(kafka, dlq.output, 5));
    expect(dlqOut.filter((r) => text(r.key) === 'alice').map(asStatus)).to.deep.equal(['forget', 'alice-4']);
    const dead = all(await readExactly(kafka, dlq.config.dlqTopic, 3));
    expect(dead.map((r) => header(r.headers, 'shredder.error'))).to.deep.equal(Array(3).fill('shredded: the subject was forgotten, its key is destroyed'));
  });

  it('sends every kind of bad input to the dead letter topic with its reason, and goes on', async () => {
    setup = encryptorSetup();
    const encryptor: Encryptor = started(await startEncryptor(setup));
    await produce(kafka, setup.input, [{ key: 'alice', value: 'alice-1' }, { key: 'bob', value: 'bob-1' }]);
    const byPartition = await readExactly(kafka, setup.output, 2);
    const located = (subject: string) => {
      for (const [partition, records] of byPartition) {
        const record = records.find((r) => text(r.key) === subject);
        if (record) return [record, partition] as const;
      }
      throw new Error(`no record of ${subject}`);
    };
    const [alice, aliceAt] = located('alice');
    const [bob, bobAt] = located('bob');
    const altered = (change: (bytes: Buffer) => void, length = alice.value!.length) => {
      const bytes = Buffer.from(alice.value!.subarray(0, length));
      change(bytes);
      return bytes;
    };
    const bad = [
      { key: 'carol', value: Buffer.from('hello, not encrypted'), partition: aliceAt, reason: 'unknown envelope version 0x68' },
      { key: 'alice', value: altered(() => {}, 30), partition: aliceAt, reason: 'truncated envelope: 30 bytes, at least 38 expected' },
      { key: 'alice', value: altered((b) => (b[0] = 0x02)), partition: aliceAt, reason: 'unknown envelope version 0x02' },
      { key: 'alice', value: altered((b) => (b[1] = 0x09)), partition: aliceAt, reason: 'unknown algorithm 0x09' },
      { key: 'alice', value: altered((b) => (b[b.length - 1] ^= 0x01)), partition: aliceAt, reason: 'authentication failed' },
      // moved to bob and relabelled with bob's key id, so that bob's key is tried: the associated data does not match
      { key: 'bob', value: altered((b) => bob.value!.copy(b, 2, 2, 10)), partition: bobAt, reason: 'authentication failed' },
      { key: null, value: alice.value!, partition: aliceAt, reason: 'no subject' },
    ];
    // moved to bob as it is: its key id is none of bob's, which is what a forgotten generation looks like
    const movedAsIs = { key: 'bob', value: alice.value!, partition: bobAt };
    await produce(kafka, setup.output, [...bad.map(({ reason: _reason, ...m }) => m), movedAsIs]);
    await produce(kafka, setup.input, [{ key: 'alice', value: 'alice-2' }]);
    await readExactly(kafka, setup.output, 2 + bad.length + 2);

    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const app = await startDecryptingConsumer({ ...setup, config: { ...setup.config, dlqTopic: uniqueName('app-dlq') } });
    started(app.consumer);
    const out = all(await readExactly(kafka, decrypt.output, 4));
    const readable = out.filter((r) => r.value !== null).map((r) => text(r.value)).sort();
    expect(readable).to.deep.equal(['alice-1', 'alice-2', 'bob-1']);
    const shredded = out.filter((r) => header(r.headers, 'shredder.status') === 'shredded');
    expect(shredded.map((r) => text(r.key))).to.deep.equal(['bob']);
    const dead = all(await readExactly(kafka, setup.dlqTopic, bad.length));
    for (const { value, reason } of bad) {
      const found = dead.find((r) => r.value!.equals(value));
      expect(found, reason).to.not.equal(undefined);
      expect(header(found!.headers, 'shredder.error'), reason).to.contain(reason);
      expect(header(found!.headers, 'shredder.source')).to.match(new RegExp(`^${setup.output}/\\d+/\\d+$`));
    }
    // the application is handed the same: readable records and the shredded one, nothing unauthenticated
    const handed = await receivedCount(app.received, 4);
    expect(handed.filter((m) => m.status === 'ok').map((m) => text(m.value)).sort()).to.deep.equal(['alice-1', 'alice-2', 'bob-1']);
    expect(handed.filter((m) => m.status === 'shredded').map((m) => [text(m.key), m.value])).to.deep.equal([['bob', null]]);
    expect(encryptor.stats.deadLettered).to.equal(0);
  });
});
