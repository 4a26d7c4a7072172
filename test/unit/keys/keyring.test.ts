// The keyring: several master keys by id, the current one wrapping, every one unwrapping; re-wrapping
// keeps a data key and its key id; values stay the contract's byte layout.
import { expect } from 'chai';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { isRecordError, outcomeOf, TransientError } from '../../../src/errors/shredder-errors.js';
import { Keyring, MasterKeyUnavailableError } from '../../../src/keys/keyring.js';
import type { MasterKeyCipher } from '../../../src/keys/master-key-cipher.js';
import { LocalMasterKey } from '../../../src/keys/local-master-key.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { WrappedKeyError } from '../../../src/wire/wrapped-key.js';

const subject = Buffer.from('user-42');
const material = { 1: randomBytes(32), 2: randomBytes(32), 9: randomBytes(32) };
const ring = (current: number, ...ids: (1 | 2 | 9)[]) => new Keyring(ids.map((id) => new LocalMasterKey(material[id], id)), current);

/** Opens a keys-topic value with node:crypto alone, as the contract lays it out. */
function openByHand(value: Uint8Array, masterKey: Buffer): Buffer {
  const bytes = Buffer.from(value);
  const decipher = createDecipheriv('aes-256-gcm', masterKey, bytes.subarray(14, 26), { authTagLength: 16 });
  decipher.setAAD(Buffer.concat([bytes.subarray(0, 26), subject]));
  decipher.setAuthTag(bytes.subarray(58, 74));
  return Buffer.concat([decipher.update(bytes.subarray(26, 58)), decipher.final()]);
}

describe('keyring', () => {
  it('wraps under the current master key, and unwraps under any master key it holds', () => {
    const dataKey = Keyring.newDataKey(1);
    const old = ring(1, 1).wrap(subject, dataKey);
    const rotated = ring(2, 1, 2);
    expect(rotated.currentId).to.equal(2);
    expect(rotated.ids).to.deep.equal([1, 2]);
    const value = rotated.wrap(subject, dataKey);
    expect(value.length).to.equal(74);
    expect(Buffer.from(value).readUInt32BE(10)).to.equal(2);
    expect(openByHand(value, material[2]).equals(Buffer.from(dataKey.key))).to.equal(true);
    for (const v of [old, value]) expect(Buffer.from(rotated.unwrap(subject, v).key).equals(Buffer.from(dataKey.key))).to.equal(true);
  });

  it('wraps a batch of keys in one pass (wrapAll) into values of the contract layout, each bound to its own subject', () => {
    const keyring = ring(2, 1, 2);
    const subjects = Array.from({ length: 50 }, (_, i) => Buffer.from(`batch-subject-${i}`.repeat(1 + (i % 3))));
    const dataKeys = subjects.map((_, i) => Keyring.newDataKey(i % 2 === 0 ? 1 : 2));
    const values = keyring.wrapAll(subjects, dataKeys);
    values.forEach((value, i) => {
      expect(value.length).to.equal(74);
      expect(Buffer.from(value).readUInt32BE(10)).to.equal(2);
      const unwrapped = keyring.unwrap(subjects[i], value);
      expect(Buffer.from(unwrapped.key).equals(Buffer.from(dataKeys[i].key)), `value ${i}`).to.equal(true);
      expect(Buffer.from(unwrapped.keyId).equals(Buffer.from(dataKeys[i].keyId))).to.equal(true);
      expect(unwrapped.algorithm).to.equal(dataKeys[i].algorithm);
      expect(() => keyring.unwrap(subjects[(i + 1) % subjects.length], value)).to.throw(WrappedKeyError);
    });
    // the nonces are fresh: no two values share one
    expect(new Set(values.map((v) => Buffer.from(v.subarray(14, 26)).toString('hex'))).size).to.equal(values.length);
    expect(openByHand(keyring.wrapAll([subject, subject.subarray(0, 4)], dataKeys.slice(0, 2))[0], material[2]).equals(Buffer.from(dataKeys[0].key))).to.equal(true);
  });

  it('re-wraps a value under the current master key with the same algorithm, key id and data key', () => {
    const dataKey = Keyring.newDataKey(2);
    const old = ring(1, 1).wrap(subject, dataKey);
    const value = ring(2, 1, 2).rewrap(subject, old);
    const bytes = Buffer.from(value);
    expect(bytes[1]).to.equal(2);
    expect(bytes.subarray(2, 10).equals(Buffer.from(dataKey.keyId))).to.equal(true);
    expect(bytes.readUInt32BE(10)).to.equal(2);
    expect(bytes.subarray(14, 26).equals(Buffer.from(old).subarray(14, 26))).to.equal(false); // a fresh nonce
    const opened = ring(2, 2).unwrap(subject, value);
    expect(Buffer.from(opened.key).equals(Buffer.from(dataKey.key))).to.equal(true);
  });

  it('names the missing master key id and the ids it holds, and refuses forged values', () => {
    const value = ring(9, 9).wrap(subject, Keyring.newDataKey(1));
    expect(() => ring(2, 1, 2).unwrap(subject, value)).to.throw(WrappedKeyError, "data key wrapped with master key id 9, which is not in this process's keyring (ids 1, 2)");
    const forged = Buffer.from(ring(1, 1).wrap(subject, Keyring.newDataKey(1)));
    forged[40] ^= 1;
    expect(() => ring(1, 1).unwrap(subject, forged)).to.throw(WrappedKeyError, /failed authentication/);
    expect(() => ring(1, 1).unwrap(Buffer.from('user-43'), ring(1, 1).wrap(subject, Keyring.newDataKey(1)))).to.throw(WrappedKeyError);
  });

  it('refuses a current id it does not hold, and an id given twice', () => {
    expect(() => ring(2, 1)).to.throw(RangeError, /current master key id 2 is not in the keyring \(ids 1\)/);
    expect(() => new Keyring([new LocalMasterKey(material[1], 1), new LocalMasterKey(material[2], 1)], 1)).to.throw(RangeError, /appears twice/);
  });

  it('derives the same secret from the same current master key, whatever else it holds, and another from another', () => {
    expect(ring(1, 1).derive('p').equals(ring(1, 1, 2).derive('p'))).to.equal(true);
    expect(ring(1, 1).derive('p').equals(ring(2, 1, 2).derive('p'))).to.equal(false);
    expect(ring(1, 1).derive('p').equals(ring(1, 1).derive('q'))).to.equal(false);
  });

  it('keeps the library\'s MasterKey: a keyring of one local key', () => {
    const master = new MasterKey(material[1], 1);
    expect(master.id).to.equal(1);
    const dataKey = MasterKey.newDataKey(1);
    expect(Buffer.from(ring(1, 1, 2).unwrap(subject, master.wrap(subject, dataKey)).key).equals(Buffer.from(dataKey.key))).to.equal(true);
    expect(() => new MasterKey(randomBytes(16), 1)).to.throw(RangeError, /32 bytes/);
  });

  describe('a provider that fails (an HSM that is down) is never the value\'s fault', () => {
    /** A local master key whose provider can be switched off, as an HSM that answers CKR_DEVICE_ERROR. */
    class FlakyMasterKey implements MasterKeyCipher {
      readonly provider = 'flaky';
      down = false;
      readonly #key: LocalMasterKey;
      constructor(readonly id: number) {
        this.#key = new LocalMasterKey(material[1], id);
      }
      seal(nonce: Uint8Array, aad: Uint8Array, dataKey: Uint8Array): Uint8Array {
        if (this.down) throw new Error('CKR_DEVICE_ERROR');
        return this.#key.seal(nonce, aad, dataKey);
      }
      open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
        if (this.down) throw new Error('CKR_DEVICE_ERROR');
        return this.#key.open(nonce, aad, sealed);
      }
    }

    it('unwrap: a forged or misplaced value is a record error while the provider works, a transient error while it is down', () => {
      const flaky = new FlakyMasterKey(1);
      const keyring = new Keyring([flaky], 1);
      const value = keyring.wrap(subject, Keyring.newDataKey(1));
      const forged = Buffer.from(value);
      forged[73] ^= 1;
      for (const [what, bad] of [['forged tag', forged], ['another subject\'s wrap', keyring.wrap(Buffer.from('user-43'), Keyring.newDataKey(1))]] as const) {
        const error = catchError(() => keyring.unwrap(subject, bad));
        expect(error, what).to.be.instanceOf(WrappedKeyError);
        expect(isRecordError(error), what).to.equal(true);
      }
      flaky.down = true;
      for (const [what, bad] of [['a sound value', value], ['a forged one', forged]] as const) {
        const error = catchError(() => keyring.unwrap(subject, bad));
        expect(error, what).to.be.instanceOf(MasterKeyUnavailableError);
        expect(error, what).to.be.instanceOf(TransientError);
        expect(outcomeOf(error), what).to.equal('retry');
        expect((error as Error).message, what).to.match(/^master key 1 \(flaky\) is unavailable: unwrapping a data key failed: CKR_DEVICE_ERROR$/);
      }
      flaky.down = false;
      expect(Buffer.from(keyring.unwrap(subject, value).key).length, 'and back once it is up').to.equal(32);
    });

    it('wrap and derive fail as transient errors while the provider is down', () => {
      const flaky = new FlakyMasterKey(7);
      const keyring = new Keyring([flaky], 7);
      flaky.down = true;
      expect(catchError(() => keyring.wrap(subject, Keyring.newDataKey(1)))).to.be.instanceOf(MasterKeyUnavailableError);
      expect(catchError(() => keyring.derive('log subject reference v1'))).to.be.instanceOf(MasterKeyUnavailableError);
    });
  });
});

function catchError(work: () => unknown): unknown {
  try {
    work();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}
