// The encryptor's and decryptor's batch functions without Kafka: every record sealed under its
// subject's key with a nonce of its own, readable from the wire format with node:crypto alone, and a
// batch mixing both algorithms (two envelope batches sharing one associated-data arena) round trips.

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';
import type { KafkaMessage, Message } from 'kafkajs';

import { loadAeadRegistry, type AeadRegistry, type AlgorithmId } from '../../../src/crypto/index.js';
import { SealingThread } from '../../../src/crypto/off-thread/sealing-thread.js';
import { decryptBatch } from '../../../src/decryptor/decrypt-batch.js';
import { encryptBatch } from '../../../src/encryptor/encrypt-batch.js';
import { KeyStore } from '../../../src/keys/key-store.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { PartitionKeys } from '../../../src/keys/partition-keys.js';
import { envelopeAad, parseEnvelope } from '../../../src/wire/envelope.js';
import { referenceOpen } from '../crypto/helpers.js';

const fetched = (key: string, value: Buffer, offset: number): KafkaMessage =>
  ({ key: Buffer.from(key), value, headers: {}, timestamp: String(Date.now()), offset: String(offset), attributes: 0 }) as KafkaMessage;

const asFetched = (outputs: Message[]): KafkaMessage[] =>
  outputs.map((m, i) => ({ key: m.key as Buffer, value: m.value as Buffer, headers: {}, timestamp: m.timestamp!, offset: String(i), attributes: 0 }) as KafkaMessage);

const cipherName = (algorithm: AlgorithmId) => (algorithm === 1 ? 'chacha20-poly1305' : 'aes-256-gcm');

describe('encryptBatch and decryptBatch', function () {
  this.timeout(30_000);
  let store: KeyStore;
  let keys: PartitionKeys;
  let ciphers: AeadRegistry;
  const context = (algorithm: AlgorithmId) => ({ topic: 'in', partition: 0, keys, ciphers, algorithm, now: Date.now, maxRecordBytes: 1_048_588 });

  before(async () => {
    ciphers = await loadAeadRegistry();
    store = await KeyStore.open(mkdtempSync(join(tmpdir(), 'shredder-batch-test-')));
    keys = new PartitionKeys(0, store, new MasterKey(randomBytes(32), 1));
  });

  after(() => store.close());

  it('seals each record under its subject key with its own nonce; node:crypto opens it from the wire format', async () => {
    const inputs = Array.from({ length: 1500 }, (_, i) => fetched(`subject-${i % 40}`, randomBytes(i % 300), i));
    const first = await encryptBatch(inputs.slice(0, 700), context(1));
    const second = await encryptBatch(inputs.slice(700), context(1));
    await keys.commit(undefined);
    const outputs = [...first.outputs, ...second.outputs];
    expect(outputs).to.have.length(inputs.length);
    const nonces = new Set<string>();
    outputs.forEach((output, i) => {
      const subject = inputs[i].key!;
      expect(Buffer.compare(output.key as Buffer, subject), `record ${i} key`).to.equal(0);
      const envelope = parseEnvelope(output.value as Buffer);
      const key = keys.liveKey(subject)!;
      expect(Buffer.from(envelope.keyId).toString('hex'), `record ${i} key id`).to.equal(Buffer.from(key.keyId).toString('hex'));
      nonces.add(Buffer.from(envelope.nonce).toString('hex'));
      const opened = referenceOpen(cipherName(envelope.algorithm), key.key, envelope.nonce, envelopeAad(envelope.header, subject), envelope.sealed);
      expect(opened, `record ${i}`).to.not.equal(null);
      expect(Buffer.compare(opened!, inputs[i].value!), `record ${i}`).to.equal(0);
    });
    expect(nonces.size, 'distinct nonces').to.equal(inputs.length);
  });

  it('within one batch, a forget splits its subject between two keys; a record produced before it is born shredded', async () => {
    const now = Date.now();
    const at = (key: string, value: Buffer | null, timestamp: number, offset: number, headers = {}): KafkaMessage =>
      ({ key: Buffer.from(key), value, headers, timestamp: String(timestamp), offset: String(offset), attributes: 0 }) as KafkaMessage;
    const values = Array.from({ length: 8 }, () => randomBytes(50));
    const inputs = [
      at('split', values[0], now - 1000, 0),
      at('other', values[1], now - 1000, 1),
      at('split', values[2], now - 900, 2),
      at('split', null, now - 500, 3, { 'shredder.command': 'forget' }),
      at('split', values[4], now, 4),
      at('split', values[5], now - 600, 5), // produced before the forget, read after it
      at('other', values[6], now, 6),
      at('split', values[7], now, 7),
    ];
    const encrypted = await encryptBatch(inputs, context(1));
    await keys.commit(undefined);
    expect(encrypted.stats).to.include({ keysCreated: 3, forgotten: 1, bornShredded: 1 });
    expect(encrypted.keyRecords.map((r) => `${Buffer.from(r.subject)}:${r.value === null ? 'tombstone' : 'key'}`)).to.deep.equal(['split:key', 'other:key', 'split:tombstone', 'split:key']);
    expect(encrypted.outputs).to.have.length(8);
    expect(encrypted.outputs[3].value, 'the forget marker').to.equal(null);
    const keyIdOf = (i: number) => Buffer.from(parseEnvelope(encrypted.outputs[i].value as Buffer).keyId).toString('hex');
    const live = keys.liveKey(Buffer.from('split'))!;
    const second = Buffer.from(live.keyId).toString('hex');
    expect(keyIdOf(0)).to.equal(keyIdOf(2));
    expect(keyIdOf(0)).to.not.equal(second);
    expect([keyIdOf(4), keyIdOf(7)]).to.deep.equal([second, second]);
    expect(keyIdOf(5)).to.not.be.oneOf([keyIdOf(0), second]);
    expect(keyIdOf(1)).to.equal(keyIdOf(6));
    for (const i of [4, 7]) {
      const envelope = parseEnvelope(encrypted.outputs[i].value as Buffer);
      const opened = referenceOpen('chacha20-poly1305', live.key, envelope.nonce, envelopeAad(envelope.header, Buffer.from('split')), envelope.sealed);
      expect(Buffer.compare(opened!, values[i]), `record ${i}`).to.equal(0);
    }
  });

  it('keeps each batch to its own subjects\' keys when two batches of one partition overlap (both waiting for the store)', async () => {
    const masterKey = new MasterKey(randomBytes(32), 1);
    const own = new PartitionKeys(0, store, masterKey);
    const now = Date.now();
    const record = (subject: string, offset: number, forget = false): KafkaMessage =>
      ({ key: Buffer.from(subject), value: forget ? null : randomBytes(30), headers: forget ? { 'shredder.command': 'forget' } : {}, timestamp: String(now + offset), offset: String(offset), attributes: 0 }) as KafkaMessage;
    const subjects = ['overlap-x', 'overlap-y', 'overlap-z'];
    const first = [record(subjects[0], 0), record(subjects[1], 1), record(subjects[0], 2), record(subjects[2], 3)];
    const second = [record(subjects[2], 10), record(subjects[0], 11), record(subjects[0], 12, true), record(subjects[0], 13), record(subjects[1], 14)];
    const ownContext = { ...context(1), keys: own };
    // neither batch's subjects are in memory yet: both wait for the store, and their plans overlap
    const pending = [encryptBatch(first, ownContext), encryptBatch(second, ownContext)];
    expect(pending.every((p) => p instanceof Promise)).to.equal(true);
    const results = await Promise.all(pending);
    await own.commit(undefined);
    const keysById = new Map<string, { subject: string; key: Uint8Array }>();
    for (const r of results.flatMap((e) => e.keyRecords)) {
      if (r.value === null) continue;
      const dataKey = masterKey.unwrap(r.subject, r.value);
      keysById.set(Buffer.from(dataKey.keyId).toString('hex'), { subject: Buffer.from(r.subject).toString(), key: dataKey.key });
    }
    let opened = 0;
    [first, second].forEach((inputs, b) => {
      expect(results[b].deadLetters, `batch ${b}`).to.deep.equal([]);
      results[b].outputs.forEach((output, i) => {
        if (output.value === null) return; // the forget marker
        const envelope = parseEnvelope(output.value as Buffer);
        const known = keysById.get(Buffer.from(envelope.keyId).toString('hex'));
        if (!known) return; // born shredded: its key was never stored
        const what = `batch ${b} record ${i}`;
        expect(known.subject, what).to.equal(inputs[i].key!.toString());
        const plaintext = referenceOpen('chacha20-poly1305', known.key, envelope.nonce, envelopeAad(envelope.header, inputs[i].key!), envelope.sealed);
        expect(Buffer.compare(plaintext!, inputs[i].value!), what).to.equal(0);
        opened++;
      });
    });
    expect(opened).to.be.at.least(5);
    expect(results.flatMap((e) => e.keyRecords).filter((r) => Buffer.from(r.subject).toString() === subjects[1] && r.value !== null), 'one key for a subject both batches share').to.have.length(1);
  });

  it('seals large batches on the sealing thread (keys of both algorithms), small ones in-thread and at once', async () => {
    const thread = new SealingThread();
    try {
      // subjects 0-59 hold ChaCha20-Poly1305 keys (sealed on the thread), 60-79 AES-256-GCM keys (never)
      const subject = (i: number) => `threaded-${i % 80}`;
      await encryptBatch(Array.from({ length: 60 }, (_, i) => fetched(subject(i), randomBytes(10), i)), { ...context(1), sealingThread: thread });
      await encryptBatch(Array.from({ length: 20 }, (_, i) => fetched(subject(60 + i), randomBytes(10), i)), { ...context(2), sealingThread: thread });
      await keys.commit(undefined);
      const inputs = Array.from({ length: 3000 }, (_, i) => fetched(subject(i * 7), randomBytes(200 + (i % 100)), i));
      const large = encryptBatch(inputs, { ...context(1), sealingThread: thread });
      expect(large, 'a large batch waits for the thread').to.be.instanceOf(Promise);
      const encrypted = await large;
      expect(encrypted.keyRecords).to.deep.equal([]);
      expect(encrypted.stats.encrypted).to.equal(inputs.length);
      expect(encrypted.stats.cryptoNs).to.be.greaterThan(0);
      expect(encrypted.stats.sealedOffThread, 'the ChaCha20-Poly1305 records').to.equal(encrypted.outputs.filter((o) => (o.value as Buffer)[1] === 1).length);
      expect(new Set(encrypted.outputs.map((o) => (o.value as Buffer)[1]))).to.deep.equal(new Set([1, 2]));
      encrypted.outputs.forEach((output, i) => {
        const envelope = parseEnvelope(output.value as Buffer);
        const key = keys.liveKey(inputs[i].key!)!;
        const opened = referenceOpen(cipherName(envelope.algorithm), key.key, envelope.nonce, envelopeAad(envelope.header, inputs[i].key!), envelope.sealed);
        expect(opened && Buffer.compare(opened, inputs[i].value!), `record ${i}`).to.equal(0);
      });
      // once written, the batch gives the thread's envelopes back: those are emptied, the others kept
      encrypted.release!();
      expect(encrypted.outputs.filter((o) => (o.value as Buffer).length === 0).length, 'released envelopes').to.equal(encrypted.stats.sealedOffThread);
      // a small batch (steady low rates: every record's latency) is not sent to the thread
      const small = encryptBatch(inputs.slice(0, 40), { ...context(1), sealingThread: thread });
      expect(small, 'a small batch is sealed at once').to.not.be.instanceOf(Promise);
      expect((small as Awaited<typeof small>).outputs).to.have.length(40);
      expect((small as Awaited<typeof small>).stats.sealedOffThread).to.equal(0);
      expect((small as Awaited<typeof small>).release, 'nothing to give back').to.equal(undefined);
    } finally {
      await thread.close();
    }
  });

  it('round trips a batch whose subjects hold keys of both algorithms', async () => {
    // subjects 0-9 get ChaCha20-Poly1305 keys, 10-19 AES-256-GCM ones; then one batch mixes them
    await encryptBatch(Array.from({ length: 10 }, (_, i) => fetched(`mixed-${i}`, randomBytes(10), i)), context(1));
    await encryptBatch(Array.from({ length: 10 }, (_, i) => fetched(`mixed-${10 + i}`, randomBytes(10), i)), context(2));
    await keys.commit(undefined);
    const inputs = Array.from({ length: 400 }, (_, i) => fetched(`mixed-${(i * 7) % 20}`, randomBytes(1 + (i % 200)), i));
    const encrypted = await encryptBatch(inputs, context(1));
    const algorithms = new Set(encrypted.outputs.map((o) => (o.value as Buffer)[1]));
    expect([...algorithms].sort()).to.deep.equal([1, 2]);
    const decrypted = await decryptBatch(asFetched(encrypted.outputs), { topic: 'out', partition: 0, keys, ciphers, catchUpKeys: async () => {} });
    expect(decrypted.deadLetters).to.deep.equal([]);
    decrypted.records.forEach((r, i) => {
      expect(r.status, `record ${i}`).to.equal('ok');
      expect(Buffer.compare(r.value!, inputs[i].value!), `record ${i}`).to.equal(0);
    });
  });
});
