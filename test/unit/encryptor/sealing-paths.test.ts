// The encryptor's two ways of sealing a batch (encrypt-batch.ts) write the same records: the same
// batches, sealed from the fetched bytes and record by record (on the sealing thread and in-thread),
// give the same output records field for field, the same key records, dead letters and counts, and
// envelopes that differ only in their random nonces and what those make of the ciphertext: the same
// header prefix (version, algorithm, key id), the same length, and node:crypto opens both to the
// input's value under the subject's live key.

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';
import type { KafkaMessage, Message } from 'kafkajs';

import { loadAeadRegistry } from '../../../src/crypto/index.js';
import { SealingThread } from '../../../src/crypto/off-thread/sealing-thread.js';
import { encryptBatch, encryptRecords, type EncryptContext, type EncryptedBatch } from '../../../src/encryptor/encrypt-batch.js';
import { fetchSealable, sealFromFetch } from '../../../src/encryptor/seal-from-fetch.js';
import { KeyStore } from '../../../src/keys/key-store.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { PartitionKeys } from '../../../src/keys/partition-keys.js';
import { ENVELOPE_NONCE_AT, envelopeAad, parseEnvelope } from '../../../src/wire/envelope.js';
import { referenceOpen } from '../crypto/helpers.js';
import { fetched, type RecordSpec } from './fetched-records.js';

const SUBJECTS = 60;
const subjectOf = (i: number) => `paths-subject-${i % SUBJECTS}`;

/** Batches a backlog holds: many records of known subjects, values of every size, tombstones, headers, runs of one subject. */
const batches: [string, () => RecordSpec[]][] = [
  ['small values of many subjects', () => Array.from({ length: 3000 }, (_, i) => ({ subject: subjectOf(i), value: randomBytes(i % 300) }))],
  [
    'tombstones, empty values, headers and old timestamps among them',
    () =>
      Array.from({ length: 2500 }, (_, i) => ({
        subject: subjectOf(i * 7),
        value: i % 97 === 0 ? null : randomBytes(i % 13 === 0 ? 0 : 180 + (i % 50)),
        headers: i % 5 === 0 ? { trace: `t-${i}`, 'content-type': 'application/json' } : ({} as Record<string, string>),
        timestamp: Date.now() - (i % 11) * 86_400_000,
      })),
  ],
  ['large values in runs of one subject', () => Array.from({ length: 400 }, (_, i) => ({ subject: subjectOf(Math.floor(i / 40)), value: randomBytes(8_000 + (i % 3) * 20_000) }))],
];

describe('the encryptor\'s two sealing paths', function () {
  this.timeout(60_000);
  let store: KeyStore;
  let keys: PartitionKeys;
  let thread: SealingThread;
  let context: EncryptContext;

  before(async () => {
    const ciphers = await loadAeadRegistry();
    store = await KeyStore.open(mkdtempSync(join(tmpdir(), 'shredder-paths-test-')));
    keys = new PartitionKeys(0, store, new MasterKey(randomBytes(32), 1));
    thread = new SealingThread();
    context = { topic: 'in', partition: 3, keys, ciphers, algorithm: 1, now: Date.now, maxRecordBytes: 1_048_588, sealingThread: thread };
    // every subject's key, created and committed as a first small batch does
    const first = await encryptBatch(fetched(Array.from({ length: SUBJECTS }, (_, i) => ({ subject: subjectOf(i), value: randomBytes(10) }))), context);
    expect(first.stats.keysCreated).to.equal(SUBJECTS);
    await keys.commit(undefined);
  });

  after(async () => {
    await thread.close();
    await store.close();
  });

  const withoutValue = ({ value: _value, ...rest }: Message) => rest;
  const withoutTimings = ({ cryptoNs: _ns, sealedOffThread: _off, sealedFromFetch: _fetch, ...rest }: EncryptedBatch['stats']) => rest;

  /** `other` writes what `expected` does, every record field for field, envelopes but their nonces. */
  function expectSameRecords(inputs: KafkaMessage[], expected: EncryptedBatch, other: EncryptedBatch, what: string): void {
    expect(other.outputs, what).to.have.length(expected.outputs.length);
    expect(other.keyRecords, `${what}: key records`).to.deep.equal(expected.keyRecords);
    expect(other.forgets, `${what}: forgets`).to.deep.equal(expected.forgets);
    expect(other.deadLetters, `${what}: dead letters`).to.deep.equal(expected.deadLetters);
    expect(withoutTimings(other.stats), `${what}: counts`).to.deep.equal(withoutTimings(expected.stats));
    expected.outputs.forEach((output, i) => {
      const theirs = other.outputs[i];
      expect(withoutValue(theirs), `${what}: record ${i}`).to.deep.equal(withoutValue(output));
      if (output.value === null) {
        expect(theirs.value, `${what}: record ${i} stays a tombstone`).to.equal(null);
        return;
      }
      const [mine, their] = [output.value as Buffer, theirs.value as Buffer];
      expect(their.length, `${what}: record ${i} envelope length`).to.equal(mine.length);
      expect(Buffer.compare(their.subarray(0, ENVELOPE_NONCE_AT), mine.subarray(0, ENVELOPE_NONCE_AT)), `${what}: record ${i} version, algorithm, key id`).to.equal(0);
      const input = inputs[i];
      const key = keys.liveKey(input.key!)!;
      for (const envelope of [mine, their].map(parseEnvelope)) {
        const opened = referenceOpen('chacha20-poly1305', key.key, envelope.nonce, envelopeAad(envelope.header, input.key!), envelope.sealed);
        expect(opened && Buffer.compare(opened, input.value!), `${what}: record ${i} opens to its value`).to.equal(0);
      }
      expect(Buffer.compare(parseEnvelope(their).nonce, parseEnvelope(mine).nonce), `${what}: record ${i} nonces differ`).to.not.equal(0);
    });
  }

  for (const [name, specs] of batches) {
    it(`${name}: sealed from the fetched bytes and record by record, the same records`, async () => {
      const inputs = fetched(specs());
      const sealable = fetchSealable(inputs, context);
      expect(sealable, 'the batch qualifies for sealing from the fetched bytes').to.not.equal(undefined);
      const fromFetch = await sealFromFetch(sealable!);
      expect(fromFetch.stats.sealedFromFetch).to.equal(inputs.filter((m) => m.value !== null).length);

      const onThread = await encryptRecords(inputs, context);
      expect(onThread.stats.sealedFromFetch).to.equal(0);
      const inThread = await encryptRecords(inputs, { ...context, sealingThread: undefined });
      expect(inThread.stats.sealedOffThread).to.equal(0);

      expectSameRecords(inputs, fromFetch, onThread, 'record by record on the sealing thread');
      expectSameRecords(inputs, fromFetch, inThread, 'record by record in-thread');
      // what encryptBatch picks for it: sealed from the fetched bytes, the same records again
      const picked = await encryptBatch(inputs, context);
      expect(picked.stats.sealedFromFetch).to.equal(fromFetch.stats.sealedFromFetch);
      expectSameRecords(inputs, fromFetch, picked, 'encryptBatch');
      for (const done of [fromFetch, onThread, inThread, picked]) done.release?.();
    });
  }
});
