// The pkcs11 master-key provider through an HSM that fails and comes back (the fault-injecting module
// of test/support/faulty-pkcs11 in front of SoftHSM): while the device errors, wrapping and unwrapping
// fail with CKR_DEVICE_ERROR; once it is back, the same source and session work again, with the
// values the local provider computes from the same material. Skips itself (visibly) without SoftHSM,
// pkcs11js or gcc.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { LocalMasterKey } from '../../../src/keys/local-master-key.js';
import type { MasterKeyCipher, MasterKeySource } from '../../../src/keys/master-key-cipher.js';
import { openPkcs11MasterKeys } from '../../../src/keys/pkcs11-master-keys.js';
import { acquirePkcs11Module } from '../../../src/keys/pkcs11-module.js';
import { faultyPkcs11, skipWithoutFaultyPkcs11, type FaultyPkcs11 } from '../../support/faulty-pkcs11.js';
import { SoftHsm, type SoftHsmToken } from '../../support/softhsm.js';

const PREFIX = 'kafka-shredder-master-key-';
const TOKEN: SoftHsmToken = { label: 'shredder-faults', pin: 'user-pin-577215' };
const CKR_DEVICE_ERROR = 0x30;

/** The error `body` throws. */
function thrown(body: () => unknown): unknown {
  try {
    body();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

/** Whether the error (or one it wraps, as `cause`) is CKR_DEVICE_ERROR, by its code or its message. */
function isDeviceError(error: unknown): boolean {
  for (let e = error as { code?: unknown; message?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === CKR_DEVICE_ERROR || String(e.message).includes('CKR_DEVICE_ERROR')) return true;
  }
  return false;
}

describe('pkcs11 master keys through an HSM that fails and recovers (SoftHSM behind a fault-injecting module)', function () {
  this.timeout(30_000);
  const material = randomBytes(32);
  const local = new LocalMasterKey(material, 1);
  const aad = Buffer.from('associated data');
  let hsm: SoftHsm | undefined;
  let faulty: FaultyPkcs11 | undefined;
  let source: MasterKeySource | undefined;
  const previousEnv: Record<string, string | undefined> = {};

  before(function () {
    skipWithoutFaultyPkcs11(this);
    hsm = SoftHsm.create();
    hsm.initToken(TOKEN);
    hsm.importAesKey(TOKEN, `${PREFIX}1`, material);
    faulty = faultyPkcs11(hsm.modulePath);
    // the module reads these from this process's environment (the flag at every call)
    for (const [name, value] of Object.entries(faulty.env)) {
      previousEnv[name] = process.env[name];
      process.env[name] = value;
    }
  });

  afterEach(async () => {
    faulty?.recover();
    await source?.close();
    source = undefined;
  });

  after(() => {
    for (const [name, value] of Object.entries(previousEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    faulty?.remove();
    hsm?.remove();
  });

  function cipher(): MasterKeyCipher {
    source = openPkcs11MasterKeys({ modulePath: faulty!.modulePath, tokenLabel: TOKEN.label, pin: TOKEN.pin, keyLabelPrefix: PREFIX });
    expect(source.ciphers.map((c) => c.id)).to.deep.equal([1]);
    return source.ciphers[0];
  }

  it('seals and opens as the local provider does, fails with CKR_DEVICE_ERROR while the device errors, and works again on the same session once it is back', () => {
    const key = cipher();
    const dataKey = randomBytes(32);
    const nonce = () => randomBytes(12);

    const before = nonce();
    const sealed = key.seal(before, aad, dataKey);
    expect(Buffer.from(sealed)).to.deep.equal(Buffer.from(local.seal(before, aad, dataKey)));
    expect(Buffer.from(key.open(before, aad, sealed))).to.deep.equal(dataKey);

    faulty!.fail();
    const sealError = thrown(() => key.seal(nonce(), aad, dataKey));
    expect(isDeviceError(sealError), String(sealError)).to.equal(true);
    const openError = thrown(() => key.open(before, aad, sealed));
    expect(isDeviceError(openError), String(openError)).to.equal(true);

    faulty!.recover();
    const after = nonce();
    const resealed = key.seal(after, aad, dataKey);
    expect(Buffer.from(resealed)).to.deep.equal(Buffer.from(local.seal(after, aad, dataKey)));
    expect(Buffer.from(key.open(before, aad, sealed))).to.deep.equal(dataKey);
    expect(Buffer.from(key.open(after, aad, resealed))).to.deep.equal(dataKey);
  });

  it('a fault between C_EncryptInit and C_Encrypt ends the operation, so the session\'s next one starts cleanly', () => {
    const key = cipher(); // (holds the module and the login while the raw session below is used)
    const p11 = acquirePkcs11Module(faulty!.modulePath);
    try {
      const { api, ck } = p11;
      const slot = p11.slots().find((s) => s.label === TOKEN.label)!;
      const session = p11.openSession(slot.slot, TOKEN.pin);
      try {
        api.C_FindObjectsInit(session.handle, [{ type: ck.CKA_CLASS, value: ck.CKO_SECRET_KEY }, { type: ck.CKA_LABEL, value: `${PREFIX}1` }]);
        const [handle] = api.C_FindObjects(session.handle, 1);
        api.C_FindObjectsFinal(session.handle);
        const nonce = randomBytes(12);
        const mechanism = { mechanism: ck.CKM_AES_GCM, parameter: { type: ck.CK_PARAMS_GCM, iv: nonce, ivBits: 96, aad, tagBits: 128 } };
        api.C_EncryptInit(session.handle, mechanism, handle);
        faulty!.fail();
        expect(isDeviceError(thrown(() => api.C_Encrypt(session.handle, Buffer.alloc(32), Buffer.alloc(48))))).to.equal(true);
        faulty!.recover();
        api.C_EncryptInit(session.handle, mechanism, handle); // CKR_OPERATION_ACTIVE had the operation been left open
        const sealed = api.C_Encrypt(session.handle, Buffer.alloc(32), Buffer.alloc(48));
        expect(sealed).to.deep.equal(Buffer.from(local.seal(nonce, aad, new Uint8Array(32))));
      } finally {
        session.close();
      }
    } finally {
      p11.release();
    }
    expect(key.id).to.equal(1);
  });
});
