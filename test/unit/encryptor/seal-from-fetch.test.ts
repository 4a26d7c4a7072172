// Sealing from the fetched bytes (large batches of subjects whose keys are at hand, sealed on the sealing
// thread from the fetched bytes): what it writes reads back from the wire format with node:crypto under
// each subject's live key; it takes a batch only when it would write what the record-by-record path writes, and
// leaves every other batch (forgets, unknown subjects, records without a subject or too large, records
// produced before their subject was forgotten) to the record-by-record path; it never seals under a key that a
// forget, a rollback or a key record has since replaced.

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';
import type { KafkaMessage, Message } from 'kafkajs';

import { loadAeadRegistry, type AeadRegistry } from '../../../src/crypto/index.js';
import { SealingThread } from '../../../src/crypto/off-thread/sealing-thread.js';
import { encryptBatch, type EncryptContext, type EncryptedBatch } from '../../../src/encryptor/encrypt-batch.js';
import { fetchSealable, sealFromFetch } from '../../../src/encryptor/seal-from-fetch.js';
import { KeyStore } from '../../../src/keys/key-store.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { PartitionKeys } from '../../../src/keys/partition-keys.js';
import { envelopeAad, parseEnvelope } from '../../../src/wire/envelope.js';
import { referenceOpen } from '../crypto/helpers.js';
import { fetched, type RecordSpec } from './fetched-records.js';

const subjectOf = (i: number) => `span-subject-${i % 50}`;
const records = (count: number, from = 0): RecordSpec[] => Array.from({ length: count }, (_, i) => ({ subject: subjectOf(from + i), value: randomBytes(200 + ((from + i) % 90)) }));

describe('the encryptor sealing from the fetched bytes', function () {
  this.timeout(30_000);
  let store: KeyStore;
  let keys: PartitionKeys;
  let ciphers: AeadRegistry;
  let thread: SealingThread;
  let context: EncryptContext;

  beforeEach(async () => {
    ciphers = await loadAeadRegistry();
    store = await KeyStore.open(mkdtempSync(join(tmpdir(), 'shredder-span-test-')));
    keys = new PartitionKeys(0, store, new MasterKey(randomBytes(32), 1));
    thread = new SealingThread();
    context = { topic: 'in', partition: 0, keys, ciphers, algorithm: 1, now: Date.now, maxRecordBytes: 1_048_588, sealingThread: thread };
    // the subjects' keys: created by a batch of the record-by-record path, committed
    const first = await encryptBatch(fetched(records(50)), context);
    expect(first.stats.keysCreated).to.equal(50);
    await keys.commit(undefined);
  });

  afterEach(async () => {
    await thread.close();
    await store.close();
  });

  /** The batch sealed from the fetched bytes, or undefined when it does not qualify. */
  const fromFetch = (inputs: KafkaMessage[], ctx: EncryptContext): Promise<EncryptedBatch> | undefined => {
    const sealable = fetchSealable(inputs, ctx);
    return sealable && sealFromFetch(sealable);
  };

  /** Every output opens with node:crypto under its subject's live key to its input's value; returns the key ids by subject. */
  async function expectReadable(inputs: KafkaMessage[], outputs: Message[]): Promise<Map<string, string>> {
    await keys.load(inputs.map((input) => input.key ?? undefined)); // (keys made in a batch are not cached: read back from the store)
    const keyIds = new Map<string, string>();
    expect(outputs).to.have.length(inputs.length);
    outputs.forEach((output, i) => {
      const input = inputs[i];
      expect(output.key, `record ${i} key`).to.equal(input.key);
      expect(output.timestamp, `record ${i} timestamp`).to.equal(input.timestamp);
      expect(output.headers, `record ${i} headers`).to.equal(input.headers);
      if (input.value === null) {
        expect(output.value, `record ${i}: a tombstone stays one`).to.equal(null);
        return;
      }
      const envelope = parseEnvelope(output.value as Buffer);
      const key = keys.liveKey(input.key!)!;
      expect(Buffer.from(envelope.keyId).toString('hex'), `record ${i} key id`).to.equal(Buffer.from(key.keyId).toString('hex'));
      keyIds.set(input.key!.toString(), Buffer.from(key.keyId).toString('hex'));
      const opened = referenceOpen('chacha20-poly1305', key.key, envelope.nonce, envelopeAad(envelope.header, input.key!), envelope.sealed);
      expect(opened && Buffer.compare(opened, input.value), `record ${i}`).to.equal(0);
    });
    return keyIds;
  }

  it('seals a large batch of known subjects on the thread; node:crypto opens every record from the wire format', async () => {
    const specs = records(3000, 7);
    specs[100] = { subject: subjectOf(3), value: null }; // a tombstone
    specs[2000] = { subject: subjectOf(4), value: Buffer.alloc(0), headers: { trace: 'abc' } };
    const inputs = fetched(specs);
    const spanned = fromFetch(inputs, context);
    expect(spanned, 'it is sealed from the fetched bytes').to.be.instanceOf(Promise);
    const encrypted = await spanned!;
    expect(encrypted.stats).to.include({ encrypted: 2999, tombstones: 1, keysCreated: 0, sealedOffThread: 2999, sealedFromFetch: 2999 });
    expect(encrypted.keyRecords).to.deep.equal([]);
    expect(encrypted.deadLetters).to.deep.equal([]);
    await expectReadable(inputs, encrypted.outputs);
    const nonces = new Set(encrypted.outputs.filter((o) => o.value).map((o) => Buffer.from(parseEnvelope(o.value as Buffer).nonce).toString('hex')));
    expect(nonces.size, 'distinct nonces').to.equal(2999);
    encrypted.release!();
  });

  it('keeps every other subject ready when a batch gives new subjects keys (new subjects keep coming in a real stream)', async () => {
    for (let round = 0; round < 3; round++) {
      const created = await encryptBatch(fetched([...records(30, round), { subject: `newcomer-${round}`, value: randomBytes(40) }]), context);
      expect(created.stats.keysCreated).to.equal(1);
      await keys.commit(undefined);
      const specs = records(2000, 23 + round);
      specs[7] = { subject: `newcomer-${round}`, value: randomBytes(300) };
      const inputs = fetched(specs);
      const spanned = fromFetch(inputs, context);
      expect(spanned, `round ${round}: the next large batch is sealed from the fetched bytes, the newcomer included`).to.be.instanceOf(Promise);
      const encrypted = await spanned!;
      await expectReadable(inputs, encrypted.outputs);
      encrypted.release!();
    }
  });

  it('leaves to the record-by-record path every batch it would not write alike, which handles each case', async () => {
    const old = Date.now() - 60_000;
    // (a forget is given a time before the batch's others: records after it then get a new key whether or not
    // the clock ticked while the batch was made, so no case depends on another's timing)
    const forgetTime = Date.now() - 1_000;
    // (each case: a large batch of known subjects with one odd record in the middle)
    const cases: [string, RecordSpec, (e: Awaited<ReturnType<typeof encryptBatch>>) => void][] = [
      ['a forget request', { subject: subjectOf(1), value: null, headers: { 'shredder.command': 'forget' }, timestamp: forgetTime }, (e) => expect(e.stats.forgotten).to.equal(1)],
      ['a subject without a key yet', { subject: 'brand-new', value: randomBytes(20) }, (e) => expect(e.stats.keysCreated).to.equal(1)],
      ['a record without a subject', { subject: null, value: randomBytes(20) }, (e) => expect(e.deadLetters).to.have.length(1)],
      ['an empty subject', { subject: '', value: randomBytes(20) }, (e) => expect(e.deadLetters).to.have.length(1)],
      ['a record too large once sealed', { subject: subjectOf(2), value: randomBytes(1_048_588) }, (e) => expect(e.deadLetters[0].headers!['shredder.error']).to.match(/too large/)],
    ];
    for (const [what, odd, check] of cases) {
      const specs = records(2000, 11);
      specs[1000] = odd;
      const inputs = fetched(specs);
      expect(fromFetch(inputs, context), what).to.equal(undefined);
      const encrypted = await encryptBatch(inputs, context);
      check(encrypted);
      await keys.commit(undefined);
      encrypted.release?.();
    }
    // a record produced before its subject was last forgotten: born shredded, by the record-by-record path only
    await encryptBatch(fetched([{ subject: subjectOf(5), value: null, headers: { 'shredder.command': 'forget' }, timestamp: forgetTime }]), context);
    await keys.commit(undefined);
    await encryptBatch(fetched([{ subject: subjectOf(5), value: randomBytes(10) }]), context); // (its new key)
    await keys.commit(undefined);
    const specs = records(2000, 13);
    specs.forEach((s) => { if (s.subject === subjectOf(5)) s.timestamp = old; });
    // (the record-by-record path's small batches above refilled the table with subject 5 and its forget time)
    await encryptBatch(fetched(records(50)), context);
    await keys.commit(undefined);
    const inputs = fetched(specs);
    expect(fromFetch(inputs, context), 'a record from before its subject\'s forget').to.equal(undefined);
    const encrypted = await encryptBatch(inputs, context);
    expect(encrypted.stats.bornShredded).to.equal(specs.filter((s) => s.subject === subjectOf(5)).length);
    encrypted.release?.();
  });

  it('never seals under a key since forgotten or rolled back: the next large batch gets the subject\'s new key', async () => {
    const large = () => fetched(records(2000, 17));
    const first = large();
    const before = await fromFetch(first, context)!;
    const keyIdsBefore = await expectReadable(first, before.outputs);
    before.release!();
    // a forget of subject 3 (a small batch: the record-by-record path), committed; then a large batch again
    // (timed a second back, so the next batch's records of subject 3 are after it even within the same millisecond)
    const forget = await encryptBatch(fetched([{ subject: subjectOf(3), value: null, headers: { 'shredder.command': 'forget' }, timestamp: Date.now() - 1_000 }]), context);
    expect(forget.stats.forgotten).to.equal(1);
    await keys.commit(undefined);
    const inputs = large();
    expect(fromFetch(inputs, context), 'the forgotten subject is no longer ready').to.equal(undefined);
    const after = await encryptBatch(inputs, context);
    expect(after.stats.keysCreated, 'subject 3 gets a new key').to.equal(1);
    await keys.commit(undefined);
    const keyIdsAfter = await expectReadable(inputs, after.outputs);
    expect(keyIdsAfter.get(subjectOf(3))).to.not.equal(keyIdsBefore.get(subjectOf(3)));
    expect(keyIdsAfter.get(subjectOf(4))).to.equal(keyIdsBefore.get(subjectOf(4)));
    after.release?.();
    // the next one is sealed from the fetched bytes again, with the new key
    const again = large();
    const spanned = await fromFetch(again, context)!;
    expect((await expectReadable(again, spanned.outputs)).get(subjectOf(3))).to.equal(keyIdsAfter.get(subjectOf(3)));
    spanned.release!();

    // a key created in a transaction that then aborts is never used: the subject gets another one
    const created = await encryptBatch(fetched([{ subject: 'rolled-back', value: randomBytes(10) }]), context);
    const abortedKeyId = Buffer.from(parseEnvelope(created.outputs[0].value as Buffer).keyId).toString('hex');
    keys.rollback();
    const withIt = fetched([...records(2000, 19), { subject: 'rolled-back', value: randomBytes(300) }]);
    expect(fromFetch(withIt, context), 'the rolled-back subject is no longer ready').to.equal(undefined);
    const next = await encryptBatch(withIt, context);
    await keys.commit(undefined);
    expect(next.stats.keysCreated).to.equal(1);
    const keyIds = await expectReadable(withIt, next.outputs);
    expect(keyIds.get('rolled-back')).to.not.equal(abortedKeyId);
    next.release?.();
  });
});
