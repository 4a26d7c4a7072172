// Keys-topic values v2 (SHREDDER_RECORD_KEYS=pseudonym): the v1 layout under version 0x02, then the
// pseudonym and the subject id sealed under a key derived from the master key. Read here with
// node:crypto and docs/wire-format.md alone, as another program would.
import { expect } from 'chai';
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { isRecordError } from '../../../src/errors/shredder-errors.js';
import { Keyring } from '../../../src/keys/keyring.js';
import { LocalMasterKey } from '../../../src/keys/local-master-key.js';
import { pseudonymOf, wrappedKeyProblem } from '../../../src/wire/wrapped-key.js';

const material = { 1: randomBytes(32), 2: randomBytes(32) };
const ring = (current: 1 | 2, ...ids: (1 | 2)[]) => new Keyring(ids.map((id) => new LocalMasterKey(material[id], id)), current);

/** The subject key of a master key, as docs/wire-format.md derives it. */
function subjectKeyByHand(masterKey: Buffer): Buffer {
  const gcm = createCipheriv('aes-256-gcm', masterKey, Buffer.alloc(12));
  gcm.setAAD(Buffer.from('kafka-shredder derived key: pseudonymous subject v1'));
  const stream = gcm.update(Buffer.alloc(32));
  return createHmac('sha256', stream).update('pseudonymous subject v1').digest();
}

/** A v2 value read by hand: its pseudonym, subject id and data key. */
function readByHand(value: Uint8Array, masterKey: Buffer) {
  const bytes = Buffer.from(value);
  const subjectGcm = createDecipheriv('aes-256-gcm', subjectKeyByHand(masterKey), bytes.subarray(90, 102));
  subjectGcm.setAAD(bytes.subarray(0, 90));
  subjectGcm.setAuthTag(bytes.subarray(bytes.length - 16));
  const subject = Buffer.concat([subjectGcm.update(bytes.subarray(102, bytes.length - 16)), subjectGcm.final()]);
  const keyGcm = createDecipheriv('aes-256-gcm', masterKey, bytes.subarray(14, 26));
  keyGcm.setAAD(Buffer.concat([bytes.subarray(0, 26), subject]));
  keyGcm.setAuthTag(bytes.subarray(58, 74));
  const key = Buffer.concat([keyGcm.update(bytes.subarray(26, 58)), keyGcm.final()]);
  return { version: bytes[0], keyId: bytes.subarray(2, 10), masterKeyId: bytes.readUInt32BE(10), pseudonym: bytes.subarray(74, 90), subject, key };
}

describe('keys-topic value v2 (pseudonymous)', () => {
  it('is the documented layout: node:crypto alone finds the pseudonym, the subject id and the data key', () => {
    const subject = Buffer.from('alice@example.org');
    const dataKey = Keyring.newDataKey(1, true);
    const value = ring(1, 1).wrap(subject, dataKey);
    expect(value.length).to.equal(118 + subject.length);
    expect(wrappedKeyProblem(value)).to.equal(undefined);
    const read = readByHand(value, material[1]);
    expect(read).to.deep.include({ version: 2, masterKeyId: 1 });
    expect(read.subject).to.deep.equal(subject);
    expect(read.key).to.deep.equal(Buffer.from(dataKey.key));
    expect(read.keyId).to.deep.equal(Buffer.from(dataKey.keyId));
    expect(read.pseudonym).to.deep.equal(Buffer.from(dataKey.pseudonym!));
    expect(Buffer.from(pseudonymOf(value)!)).to.deep.equal(Buffer.from(dataKey.pseudonym!));
    // nothing of the subject id in clear
    expect(Buffer.from(value).includes(subject)).to.equal(false);
  });

  it('wraps a batch of v1 and v2 keys alike in one pass (wrapAll), each readable by hand', () => {
    const keyring = ring(1, 1);
    const subjects = ['a', 'bb', 'a-longer-subject-id', 'c'].map((s) => Buffer.from(s));
    const keys = [Keyring.newDataKey(1, true), Keyring.newDataKey(1), ...Keyring.newDataKeys(2, 2, true)];
    const values = keyring.wrapAll(subjects, keys);
    expect(values.map((v) => v[0])).to.deep.equal([2, 1, 2, 2]);
    for (const i of [0, 2, 3]) {
      const read = readByHand(values[i], material[1]);
      expect(read.subject).to.deep.equal(subjects[i]);
      expect(read.key).to.deep.equal(Buffer.from(keys[i].key));
    }
    expect(Buffer.from(keyring.unwrap(subjects[1], values[1]).key)).to.deep.equal(Buffer.from(keys[1].key));
  });

  it('unwraps with its pseudonym, opens its subject only under its own record key, and refuses forgeries as record errors', () => {
    const keyring = ring(1, 1);
    const subject = Buffer.from('bob');
    const dataKey = Keyring.newDataKey(2, true);
    const value = keyring.wrap(subject, dataKey);
    const unwrapped = keyring.unwrap(subject, value);
    expect(Buffer.from(unwrapped.pseudonym!)).to.deep.equal(Buffer.from(dataKey.pseudonym!));
    expect(Buffer.from(keyring.subjectOf(value, dataKey.pseudonym))).to.deep.equal(subject);
    const refused = (work: () => unknown) => {
      let caught: unknown;
      try {
        work();
      } catch (err) {
        caught = err;
      }
      expect(isRecordError(caught), String(caught)).to.equal(true);
    };
    refused(() => keyring.subjectOf(value, randomBytes(16))); // moved under another record key
    const forged = Buffer.from(value);
    forged[forged.length - 20] ^= 1;
    refused(() => keyring.subjectOf(forged));
    const relabelled = Buffer.from(value);
    relabelled[80] ^= 1; // another pseudonym, same sealed subject
    refused(() => keyring.subjectOf(relabelled, relabelled.subarray(74, 90)));
    refused(() => keyring.unwrap(Buffer.from('mallory'), value));
    refused(() => keyring.subjectOf(keyring.wrap(subject, Keyring.newDataKey(1)))); // a v1 value
    refused(() => ring(2, 2).subjectOf(value)); // a master key not held
  });

  it('re-wraps under the current master key with the same key id, data key and pseudonym, the subject sealed anew', () => {
    const subject = Buffer.from('carol');
    const dataKey = Keyring.newDataKey(1, true);
    const old = ring(1, 1).wrap(subject, dataKey);
    const rotated = ring(2, 1, 2);
    const value = rotated.rewrap(subject, old);
    const read = readByHand(value, material[2]);
    expect(read).to.deep.include({ version: 2, masterKeyId: 2 });
    expect(read.subject).to.deep.equal(subject);
    expect(read.pseudonym).to.deep.equal(Buffer.from(dataKey.pseudonym!));
    expect(read.keyId).to.deep.equal(Buffer.from(dataKey.keyId));
    expect(Buffer.from(rotated.subjectOf(old))).to.deep.equal(subject); // the old value still opens
  });

  it('is judged by its bytes: a v2 value needs more than its 118 fixed bytes', () => {
    const value = ring(1, 1).wrap(Buffer.from('d'), Keyring.newDataKey(1, true));
    expect(wrappedKeyProblem(value.subarray(0, 118))?.kind).to.equal('length');
    expect(wrappedKeyProblem(value.subarray(0, 74))?.kind).to.equal('length');
    expect(pseudonymOf(value.subarray(0, 100))).to.equal(undefined);
    const unknown = Buffer.from(value);
    unknown[1] = 9;
    expect(wrappedKeyProblem(unknown)?.kind).to.equal('algorithm');
  });
});
