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
