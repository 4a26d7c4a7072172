// The pkcs11 master-key provider against a real SoftHSM token: the keys-topic values it writes are the
// local provider's, byte for byte, for the same key material; forged values, other keys and errors.
// Skips itself (visibly) where softhsm2 is not installed.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { AES_256_GCM, CHACHA20_POLY1305 } from '../../../src/crypto/aead-algorithms.js';
import { Keyring } from '../../../src/keys/keyring.js';
import { LocalMasterKey } from '../../../src/keys/local-master-key.js';
import type { MasterKeyCipher, MasterKeySource } from '../../../src/keys/master-key-cipher.js';
import { masterKeyIdOfLabel, openPkcs11MasterKeys, type Pkcs11MasterKeyOptions } from '../../../src/keys/pkcs11-master-keys.js';
import { loadPkcs11js } from '../../../src/keys/pkcs11-module.js';
import { parseWrappedKey, WrappedKeyError } from '../../../src/wire/wrapped-key.js';
import { SoftHsm, skipWithoutSoftHsm, type SoftHsmToken } from '../../support/softhsm.js';

const PREFIX = 'kafka-shredder-master-key-';
const TOKEN: SoftHsmToken = { label: 'shredder-test', pin: 'user-pin-314159' };
const OTHER: SoftHsmToken = { label: 'shredder-other', pin: 'user-pin-271828' };
const EMPTY: SoftHsmToken = { label: 'shredder-empty', pin: 'user-pin-161803' };
const WEAK: SoftHsmToken = { label: 'shredder-weak', pin: 'user-pin-141421' };
const LEAKY: SoftHsmToken = { label: 'shredder-leaky', pin: 'user-pin-173205' };
const subject = Buffer.from('customer-42');

describe('pkcs11 master keys (SoftHSM)', function () {
  const material = { 1: randomBytes(32), 2: randomBytes(32), other: randomBytes(32) };
  let hsm: SoftHsm | undefined;
  const sources: MasterKeySource[] = [];

  before(function () {
    skipWithoutSoftHsm(this);
    hsm = SoftHsm.create();
    for (const token of [TOKEN, OTHER, EMPTY, WEAK, LEAKY]) hsm.initToken(token);
    hsm.importAesKey(TOKEN, `${PREFIX}1`, material[1]);
    hsm.importAesKey(TOKEN, `${PREFIX}2`, material[2]);
    hsm.generateAesKey(TOKEN, `${PREFIX}7`);
    hsm.importAesKey(TOKEN, 'unrelated-key', randomBytes(32));
    hsm.importAesKey(TOKEN, `${PREFIX}01`, randomBytes(32)); // not an id (leading zero): ignored
    hsm.importAesKey(OTHER, `${PREFIX}1`, material.other);
    hsm.generateAesKey(EMPTY, 'some-other-key');
    const ck = loadPkcs11js();
    hsm.generateAesKey(WEAK, `${PREFIX}1`, [{ type: ck.CKA_EXTRACTABLE, value: true }]);
    hsm.importAesKey(LEAKY, `${PREFIX}1`, randomBytes(32), [{ type: ck.CKA_SENSITIVE, value: false }]);
  });

  afterEach(async () => {
    for (const source of sources.splice(0)) await source.close();
  });

  after(() => hsm?.remove());

  function open(options: Partial<Pkcs11MasterKeyOptions> = {}): MasterKeySource {
    const source = openPkcs11MasterKeys({ modulePath: hsm!.modulePath, tokenLabel: TOKEN.label, pin: TOKEN.pin, keyLabelPrefix: PREFIX, ...options });
    sources.push(source);
    return source;
  }

  function cipher(source: MasterKeySource, id: number): MasterKeyCipher {
    const found = source.ciphers.find((c) => c.id === id);
    if (!found) throw new Error(`no master key ${id} in the source (ids ${source.ciphers.map((c) => c.id).join(', ')})`);
    return found;
  }

  /** The error `body` throws. */
  function thrown(body: () => unknown): Error {
    try {
      body();
    } catch (error) {
      return error as Error;
    }
    throw new Error('expected an error');
  }

  it('(a) wraps what the local provider unwraps and the reverse, in the contract\'s 74-byte layout', () => {
    const hsmRing = new Keyring([cipher(open(), 1)], 1);
    const localKey = new LocalMasterKey(material[1], 1);
    const localRing = new Keyring([localKey], 1);
    expect(hsmRing.provider).to.equal('pkcs11');

    const dataKey = Keyring.newDataKey(AES_256_GCM);
    const value = hsmRing.wrap(subject, dataKey);
    expect(value).to.have.length(74);
    expect(value[0], 'version').to.equal(0x01);
    expect(value[1], 'algorithm').to.equal(AES_256_GCM);
    expect(Buffer.from(value.subarray(2, 10)).equals(Buffer.from(dataKey.keyId)), 'key id at 2-9').to.equal(true);
    expect(Buffer.from(value).readUInt32BE(10), 'master key id, big-endian at 10-13').to.equal(1);
    // byte-identical to the local provider's AES-256-GCM under the same nonce and associated data
    const nonce = value.subarray(14, 26);
    const expected = localKey.seal(nonce, Buffer.concat([value.subarray(0, 26), subject]), dataKey.key);
    expect(Buffer.from(value.subarray(26)).equals(Buffer.from(expected)), 'sealed bytes 26-73').to.equal(true);

    const unwrapped = localRing.unwrap(subject, value);
    expect(Buffer.from(unwrapped.key).equals(Buffer.from(dataKey.key))).to.equal(true);
    expect(Buffer.from(unwrapped.keyId).equals(Buffer.from(dataKey.keyId))).to.equal(true);
    expect(unwrapped.algorithm).to.equal(AES_256_GCM);

    const back = Keyring.newDataKey(CHACHA20_POLY1305);
    const fromLocal = hsmRing.unwrap(subject, localRing.wrap(subject, back));
    expect(fromLocal.algorithm).to.equal(CHACHA20_POLY1305);
    expect(Buffer.from(fromLocal.key).equals(Buffer.from(back.key))).to.equal(true);
    expect(fromLocal.key, 'a plain Uint8Array of its own').to.be.instanceOf(Uint8Array);
  });

  it('(b) never unwraps under other key material, nor with a flipped tag, ciphertext, header or subject byte', () => {
    const hsmRing = new Keyring([cipher(open(), 1)], 1);
    const value = hsmRing.wrap(subject, Keyring.newDataKey(AES_256_GCM));
    const otherHsm = new Keyring([cipher(open({ tokenLabel: OTHER.label, pin: OTHER.pin }), 1)], 1);
    expect(() => otherHsm.unwrap(subject, value), 'another HSM key').to.throw(WrappedKeyError, /failed authentication/);
    expect(() => new Keyring([new LocalMasterKey(material.other, 1)], 1).unwrap(subject, value), 'another local key').to.throw(WrappedKeyError);
    expect(() => hsmRing.unwrap(subject, otherHsm.wrap(subject, Keyring.newDataKey(AES_256_GCM))), 'the reverse').to.throw(WrappedKeyError);

    for (const [where, at] of [['tag', 73], ['ciphertext', 30], ['key id (aad)', 3], ['nonce', 20], ['algorithm (aad)', 1]] as const) {
      const forged = Buffer.from(value);
      forged[at] ^= where === 'algorithm (aad)' ? 0x03 : 0x01; // 2 -> 1: still a known algorithm
      expect(() => hsmRing.unwrap(subject, forged), where).to.throw(WrappedKeyError, /failed authentication/);
    }
    expect(() => hsmRing.unwrap(Buffer.from('customer-43'), value), 'another subject').to.throw(WrappedKeyError);
    // a failed tag check ends that operation only: the session goes on unwrapping
    expect(hsmRing.unwrap(subject, value).key).to.have.length(32);
  });

  it('(c) a key generated inside the token round-trips, and its value cannot be read out', () => {
    const warnings: string[] = [];
    const source = open({ warn: (m) => warnings.push(m) });
    const ring = new Keyring([cipher(source, 7)], 7);
    const dataKey = Keyring.newDataKey(AES_256_GCM);
    const value = ring.wrap(subject, dataKey);
    expect(parseWrappedKey(value).masterKeyId).to.equal(7);
    expect(Buffer.from(ring.unwrap(subject, value).key).equals(Buffer.from(dataKey.key))).to.equal(true);
    expect(() => hsm!.readKeyValue(TOKEN, `${PREFIX}7`)).to.throw(/CKR_ATTRIBUTE_SENSITIVE/);
    expect(() => hsm!.readKeyValue(TOKEN, `${PREFIX}1`), 'an imported key too').to.throw(/CKR_ATTRIBUTE_SENSITIVE/);
    // the imported keys' material has been outside the token: a warning each, none for the generated one
    expect(warnings).to.have.length(2);
    expect(warnings.join('\n')).to.match(new RegExp(`"${PREFIX}1".*imported`)).and.to.match(new RegExp(`"${PREFIX}2"`));
    expect(warnings.join('\n')).not.to.include(`${PREFIX}7`);
  });

  it('(d) several ids in one token: lists them, unwraps each with its own key, and rewraps from id 1 to id 2', () => {
    const source = open();
    expect(source.ciphers.map((c) => c.id), 'ids 1, 2, 7 (not "01", nor unrelated labels)').to.deep.equal([1, 2, 7]);
    expect(source.ciphers.every((c) => c.provider === 'pkcs11')).to.equal(true);
    const all = new Keyring(source.ciphers, 2);
    expect(all.ids).to.deep.equal([1, 2, 7]);
    expect(all.currentId).to.equal(2);

    const keys = [1, 2, 7].map((id) => {
      const dataKey = Keyring.newDataKey(AES_256_GCM);
      return { id, dataKey, value: new Keyring(source.ciphers, id).wrap(subject, dataKey) };
    });
    for (const { id, dataKey, value } of keys) {
      expect(parseWrappedKey(value).masterKeyId).to.equal(id);
      expect(Buffer.from(all.unwrap(subject, value).key).equals(Buffer.from(dataKey.key)), `id ${id}`).to.equal(true);
      const alone = new Keyring([cipher(source, id === 1 ? 2 : 1)], id === 1 ? 2 : 1);
      expect(() => alone.unwrap(subject, value), `id ${id} under another key`).to.throw(WrappedKeyError);
    }

    const [one] = keys;
    const rewrapped = all.rewrap(subject, one.value);
    const parsed = parseWrappedKey(rewrapped);
    expect(parsed.masterKeyId).to.equal(2);
    expect(parsed.algorithm).to.equal(one.dataKey.algorithm);
    expect(Buffer.from(parsed.keyId).equals(Buffer.from(one.dataKey.keyId))).to.equal(true);
    const byLocal2 = new Keyring([new LocalMasterKey(material[2], 2)], 2).unwrap(subject, rewrapped);
    expect(Buffer.from(byLocal2.key).equals(Buffer.from(one.dataKey.key)), 'the local key 2 unwraps the rewrapped value').to.equal(true);
  });

  it('(d) sources sharing the module and token: closing one leaves the other working; the slot index finds the same keys', async () => {
    const first = open();
    const second = open({ tokenLabel: undefined, slot: indexOf(TOKEN) });
    expect(second.ciphers.map((c) => c.id)).to.deep.equal([1, 2, 7]);
    const value = new Keyring(first.ciphers, 1).wrap(subject, Keyring.newDataKey(AES_256_GCM));
    await first.close();
    await first.close(); // twice: harmless
    expect(new Keyring(second.ciphers, 1).unwrap(subject, value).key).to.have.length(32);
    expect(() => first.ciphers[0].seal(new Uint8Array(12), new Uint8Array(0), new Uint8Array(32)), 'a closed source').to.throw(/closed/);
  });

  /** The index of `token` in SoftHSM's list of slots with a token. */
  function indexOf(token: SoftHsmToken): number {
    return hsm!.withSession(token, (p11) => p11.slots().find((s) => s.label === token.label)!.index);
  }

  it('(e) a wrong PIN: names the variable and the token\'s answer, never a PIN', () => {
    const error = thrown(() => open({ pin: 'wrong-pin-999' }));
    expect(error.message).to.match(/SHREDDER_PKCS11_PIN \(or SHREDDER_PKCS11_PIN_FILE\)/).and.to.match(/CKR_PIN_INCORRECT/).and.to.include('"shredder-test"');
    expect(error.message).not.to.include('wrong-pin-999');
    expect(error.message).not.to.include(TOKEN.pin);
    expect(String(error.stack)).not.to.include('wrong-pin-999');
    expect(open().ciphers, 'the right PIN afterwards').to.have.length(3);
  });

  it('(e) an unknown token label or slot, both or neither: names SHREDDER_PKCS11_TOKEN_LABEL / SHREDDER_PKCS11_SLOT and the tokens there', () => {
    expect(() => open({ tokenLabel: 'no-such-token' })).to.throw(/SHREDDER_PKCS11_TOKEN_LABEL="no-such-token": no such token in .*libsofthsm2\.so \(slots with a token: .*"shredder-test"/);
    expect(() => open({ tokenLabel: undefined, slot: 99 })).to.throw(/SHREDDER_PKCS11_SLOT=99: no token in that slot/);
    expect(() => open({ slot: 0 })).to.throw(/set one of SHREDDER_PKCS11_TOKEN_LABEL or SHREDDER_PKCS11_SLOT .*both set/);
    expect(() => open({ tokenLabel: undefined })).to.throw(/set one of SHREDDER_PKCS11_TOKEN_LABEL or SHREDDER_PKCS11_SLOT .*neither set/);
  });

  it('(e) no key with the prefix: lists the labels searched and those found', () => {
    expect(() => open({ keyLabelPrefix: 'absent-prefix-' })).to.throw(
      /no master key in token "shredder-test": SHREDDER_PKCS11_KEY_LABEL="absent-prefix-" looks for AES secret keys labelled "absent-prefix-<id>" .*"absent-prefix-1".*AES keys there: .*"unrelated-key"/,
    );
    expect(() => open({ tokenLabel: EMPTY.label, pin: EMPTY.pin })).to.throw(/no master key in token "shredder-empty".*AES keys there: "some-other-key"/);
  });

  it('(e) a module path that is not there, and a key that can leave the token, are refused', () => {
    expect(() => open({ modulePath: '/nonexistent/libpkcs11.so' })).to.throw(/SHREDDER_PKCS11_MODULE: no PKCS#11 module at \/nonexistent\/libpkcs11\.so/);
    expect(() => open({ modulePath: '' })).to.throw(/SHREDDER_KEY_PROVIDER=pkcs11 needs SHREDDER_PKCS11_MODULE/);
    expect(() => open({ modulePath: '/etc/hostname' })).to.throw(/SHREDDER_PKCS11_MODULE: \/etc\/hostname does not load as a PKCS#11 module/);
    expect(() => open({ tokenLabel: WEAK.label, pin: WEAK.pin })).to.throw(/master key "kafka-shredder-master-key-1" in token "shredder-weak" is extractable \(CKA_EXTRACTABLE true/);
    expect(() => open({ tokenLabel: LEAKY.label, pin: LEAKY.pin })).to.throw(/master key "kafka-shredder-master-key-1" in token "shredder-leaky" is not sensitive \(CKA_SENSITIVE false/);
    expect(open().ciphers, 'the module is still usable after the failures').to.have.length(3);
  });

  it('(f) derive() gives the same secret as the local provider of the same material', () => {
    const source = open();
    const local = new Keyring([new LocalMasterKey(material[1], 1)], 1);
    const viaHsm = new Keyring(source.ciphers, 1);
    expect(viaHsm.derive('x').equals(local.derive('x'))).to.equal(true);
    expect(viaHsm.derive('log subjects').equals(local.derive('log subjects'))).to.equal(true);
    expect(viaHsm.derive('x').equals(viaHsm.derive('y'))).to.equal(false);
  });
});

describe('pkcs11 master keys, without SoftHSM', () => {
  it('names SHREDDER_KEY_PROVIDER=pkcs11 and the package when pkcs11js is not installed', () => {
    const absent = (id: string): never => {
      throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    };
    expect(() => openPkcs11MasterKeys({ modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 't', pin: 'secret-pin', keyLabelPrefix: PREFIX, require: absent })).to.throw(
      /SHREDDER_KEY_PROVIDER=pkcs11 needs the optional dependency pkcs11js .*is not installed: install it with `npm install pkcs11js@2\.1\.7`/,
    );
  });

  it('reads master key ids from labels: a uint32 in decimal after the prefix, nothing else', () => {
    expect(masterKeyIdOfLabel(PREFIX, `${PREFIX}1`)).to.equal(1);
    expect(masterKeyIdOfLabel(PREFIX, `${PREFIX}0`)).to.equal(0);
    expect(masterKeyIdOfLabel(PREFIX, `${PREFIX}4294967295`)).to.equal(0xffffffff);
    for (const label of [`${PREFIX}4294967296`, `${PREFIX}01`, `${PREFIX}`, `${PREFIX}1a`, `${PREFIX}-1`, `x${PREFIX}1`, `${PREFIX}1 `]) {
      expect(masterKeyIdOfLabel(PREFIX, label), label).to.equal(undefined);
    }
    expect(masterKeyIdOfLabel('keys.(v1)+', 'keys.(v1)+3'), 'a prefix with regex characters').to.equal(3);
  });
});
