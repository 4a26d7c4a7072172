// A large batch whose subjects are new, or have keys in the store but not in memory, gets those keys
// first and is then sealed from the fetched bytes: what it writes opens with node:crypto under each
// subject's live key, every new key is in the batch's key records (wrapped under the master key) and a
// stored key is used, not replaced; a batch that needs the record-by-record path (a record from before
// its subject's forget, an unreadable keys-topic value) goes there with no key made for it.

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';
import type { KafkaMessage, Message } from 'kafkajs';

import { loadAeadRegistry, type AeadRegistry } from '../../../src/crypto/index.js';
import { SealingThread } from '../../../src/crypto/off-thread/sealing-thread.js';
import { encryptBatch, type EncryptContext } from '../../../src/encryptor/encrypt-batch.js';
import { KeyStore } from '../../../src/keys/key-store.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { PartitionKeys } from '../../../src/keys/partition-keys.js';
import { envelopeAad, parseEnvelope } from '../../../src/wire/envelope.js';
import { referenceOpen } from '../crypto/helpers.js';
import { fetched, type RecordSpec } from './fetched-records.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const batchOf = (prefix: string, count: number, subjects: number): RecordSpec[] =>
  Array.from({ length: count }, (_, i) => ({ subject: `${prefix}-${i % subjects}`, value: randomBytes(150 + (i % 70)) }));

describe('the encryptor keying a batch\'s subjects first, then sealing it from the fetched bytes', function () {
  this.timeout(30_000);
  let stateDir: string;
  let store: KeyStore;
  let keys: PartitionKeys;
  let masterKey: MasterKey;
  let ciphers: AeadRegistry;
  let thread: SealingThread;
  let context: EncryptContext;

  const contextFor = (k: PartitionKeys): EncryptContext => ({ topic: 'in', partition: 0, keys: k, ciphers, algorithm: 1, now: Date.now, maxRecordBytes: 1_048_588, sealingThread: thread });

  beforeEach(async () => {
    ciphers = await loadAeadRegistry();
    stateDir = mkdtempSync(join(tmpdir(), 'shredder-keyed-first-test-'));
    store = await KeyStore.open(stateDir);
    masterKey = new MasterKey(randomBytes(32), 1);
    keys = new PartitionKeys(0, store, masterKey);
    thread = new SealingThread();
    context = contextFor(keys);
  });

  afterEach(async () => {
    await thread.close();
    await store.close();
  });

  /** Every output opens with node:crypto under its subject's live key; returns the key ids by subject. */
  async function expectReadable(inputs: KafkaMessage[], outputs: Message[], under: PartitionKeys = keys): Promise<Map<string, string>> {
    await under.load(inputs.map((input) => input.key ?? undefined)); // (keys made in a batch are not cached: read back from the store)
    const keyIds = new Map<string, string>();
    expect(outputs).to.have.length(inputs.length);
    outputs.forEach((output, i) => {
      const input = inputs[i];
      expect(output.key, `record ${i} key`).to.equal(input.key);
      const envelope = parseEnvelope(output.value as Buffer);
      const key = under.liveKey(input.key!)!;
      expect(hex(envelope.keyId), `record ${i} key id`).to.equal(hex(key.keyId));
      keyIds.set(input.key!.toString(), hex(key.keyId));
      const opened = referenceOpen('chacha20-poly1305', key.key, envelope.nonce, envelopeAad(envelope.header, input.key!), envelope.sealed);
      expect(opened && Buffer.compare(opened, input.value!), `record ${i}`).to.equal(0);
    });
    return keyIds;
  }

  it('seals a batch of new subjects from the fetched bytes, each new key once in the key records, wrapped under the master key', async () => {
    const inputs = fetched(batchOf('newcomer', 3000, 700));
    const encrypted = await encryptBatch(inputs, context);
    expect(encrypted.stats).to.include({ encrypted: 3000, keysCreated: 700, sealedFromFetch: 3000 });
    expect(encrypted.deadLetters).to.deep.equal([]);
    const keyIds = await expectReadable(inputs, encrypted.outputs);
    expect(encrypted.keyRecords).to.have.length(700);
    const recorded = new Set<string>();
    for (const record of encrypted.keyRecords) {
      const subject = Buffer.from(record.subject).toString();
      expect(recorded.has(subject), `${subject} keyed twice`).to.equal(false);
      recorded.add(subject);
      const unwrapped = masterKey.unwrap(record.subject, record.value!);
      expect(hex(unwrapped.keyId), subject).to.equal(keyIds.get(subject));
      expect(hex(unwrapped.key), subject).to.equal(hex(keys.liveKey(record.subject)!.key));
    }
    encrypted.release?.();
  });

  it('gives the record-by-record path of a later small batch the keys a batch keyed first made, before and after its commit (no second key)', async () => {
    const first = fetched(batchOf('regular', 2000, 300));
    const keyed = await encryptBatch(first, context);
    expect(keyed.stats).to.include({ keysCreated: 300, sealedFromFetch: 2000 });
    const keyIds = await expectReadable(first, keyed.outputs);
    keyed.release?.();
    // a small batch (the record-by-record path) of the same subjects, the first batch not yet committed, then committed
    for (const commitFirst of [false, true]) {
      if (commitFirst) await keys.commit(undefined);
      const small = fetched(batchOf('regular', 20, 300));
      const encrypted = await encryptBatch(small, context);
      expect(encrypted.stats, `committed: ${commitFirst}`).to.include({ keysCreated: 0, sealedFromFetch: 0, encrypted: 20 });
      const smallIds = await expectReadable(small, encrypted.outputs);
      for (const [subject, keyId] of smallIds) expect(keyId, subject).to.equal(keyIds.get(subject));
    }
  });

  it('leaves no trace of a batch keyed first whose transaction aborted: the next batch makes its subjects\' keys again, and uses none of the rolled-back ones', async () => {
    const inputs = fetched(batchOf('aborted', 2000, 300));
    const aborted = await encryptBatch(inputs, context);
    expect(aborted.stats.keysCreated).to.equal(300);
    const abortedIds = new Set(aborted.keyRecords.map((r) => hex(masterKey.unwrap(r.subject, r.value!).keyId)));
    aborted.release?.();
    keys.rollback();
    await keys.load(aborted.keyRecords.map((r) => r.subject));
    for (const record of aborted.keyRecords) expect(keys.liveKey(record.subject), Buffer.from(record.subject).toString()).to.equal(undefined);
    const again = await encryptBatch(inputs, context);
    expect(again.stats).to.include({ keysCreated: 300, sealedFromFetch: 2000 });
    const keyIds = await expectReadable(inputs, again.outputs);
    for (const keyId of keyIds.values()) expect(abortedIds.has(keyId)).to.equal(false);
    again.release?.();
  });

  it('uses the keys a new instance finds in the store (none made), and makes keys only for the subjects without one', async () => {
    const first = fetched(batchOf('member', 2000, 400));
    const before = await encryptBatch(first, context);
    await keys.commit(undefined);
    const keyIdsBefore = await expectReadable(first, before.outputs);
    before.release?.();

    // a new instance on the same store: nothing in memory
    const fresh = new PartitionKeys(0, store, masterKey);
    const mixed = fetched([...batchOf('member', 1500, 400), ...batchOf('joiner', 500, 100)]);
    const encrypted = await encryptBatch(mixed, contextFor(fresh));
    expect(encrypted.stats).to.include({ encrypted: 2000, keysCreated: 100, sealedFromFetch: 2000 });
    expect(encrypted.keyRecords.map((r) => Buffer.from(r.subject).toString()).every((s) => s.startsWith('joiner-'))).to.equal(true);
    const keyIds = await expectReadable(mixed, encrypted.outputs, fresh);
    for (const [subject, keyId] of keyIdsBefore) expect(keyIds.get(subject), subject).to.equal(keyId);
    encrypted.release?.();
  });

  it('leaves to the record-by-record path, with no key made ahead, a batch with a record from before its subject\'s forget', async () => {
    const forgottenAt = Date.now() - 1_000;
    const forget = await encryptBatch(fetched([{ subject: 'returning', value: null, headers: { 'shredder.command': 'forget' }, timestamp: forgottenAt }]), context);
    expect(forget.stats.forgotten).to.equal(1);
    await keys.commit(undefined);
    const fresh = new PartitionKeys(0, store, masterKey);
    const specs = batchOf('other', 2000, 300);
    specs[500] = { subject: 'returning', value: randomBytes(100), timestamp: forgottenAt - 5_000 }; // produced before the forget
    specs[1500] = { subject: 'returning', value: randomBytes(100) }; // after it
    const inputs = fetched(specs);
    const encrypted = await encryptBatch(inputs, contextFor(fresh));
    expect(encrypted.stats.sealedFromFetch).to.equal(0);
    expect(encrypted.stats.bornShredded).to.equal(1);
    expect(encrypted.stats.keysCreated).to.equal(301); // (the other subjects and the returning one, once each)
    expect(new Set(encrypted.keyRecords.map((r) => Buffer.from(r.subject).toString())).size).to.equal(301);
    const returning = fresh.liveKey(Buffer.from('returning'))!;
    const born = parseEnvelope(encrypted.outputs[500].value as Buffer);
    expect(hex(born.keyId), 'the record from before the forget is under a key never stored').to.not.equal(hex(returning.keyId));
    expect(hex(parseEnvelope(encrypted.outputs[1500].value as Buffer).keyId)).to.equal(hex(returning.keyId));
    encrypted.release?.();
  });

  it('leaves to the record-by-record path a batch with a subject whose keys-topic value cannot be read: its records are dead-lettered, the others written', async () => {
    await store.apply([{ subject: Buffer.from('unreadable'), wrapped: randomBytes(100) }], { offset: 1, savedAt: Date.now() });
    const specs = batchOf('neighbour', 2000, 200);
    specs[999] = { subject: 'unreadable', value: randomBytes(100) };
    const inputs = fetched(specs);
    const encrypted = await encryptBatch(inputs, context);
    expect(encrypted.stats.sealedFromFetch).to.equal(0);
    expect(encrypted.stats.keysCreated).to.equal(200);
    expect(encrypted.deadLetters).to.have.length(1);
    expect(String(encrypted.deadLetters[0].headers!['shredder.error'])).to.match(/key unavailable/);
    expect(encrypted.outputs).to.have.length(1999);
    encrypted.release?.();
  });
});
