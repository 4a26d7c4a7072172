// A SoftHSM (Debian's softhsm2) for the PKCS#11 tests and the key benchmark: fresh tokens in a temp
// folder, AES-256 master keys imported with known material or generated inside a token.
//
// SoftHSM reads its configuration (SOFTHSM2_CONF) and its token folder when the module is initialized
// (C_Initialize): create the SoftHsm before a source opens, and make tokens with softhsm2-util while
// no source of this process holds the module (a token made after C_Initialize is seen at the next one).
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type Attribute, type Handle, type Pkcs11Module, acquirePkcs11Module, loadPkcs11js } from '../../src/keys/pkcs11-module.js';

export const SOFTHSM_MODULE = process.env.SOFTHSM2_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
const SOFTHSM_UTIL = 'softhsm2-util';

export interface SoftHsmToken {
  label: string;
  pin: string;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Why the SoftHSM tests cannot run here, or undefined when softhsm2 (module and softhsm2-util) and pkcs11js are installed. */
export function softHsmMissing(): string | undefined {
  try {
    accessSync(SOFTHSM_MODULE, constants.R_OK);
  } catch {
    return `softhsm2 is not installed (no ${SOFTHSM_MODULE}; apt-get install softhsm2)`;
  }
  if (!onPath(SOFTHSM_UTIL)) return `softhsm2 is not installed (no ${SOFTHSM_UTIL} on PATH; apt-get install softhsm2)`;
  try {
    loadPkcs11js();
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

/** Skips the running test or hook (visibly, with the reason) when SoftHSM is not usable here. */
export function skipWithoutSoftHsm(context: Mocha.Context): void {
  const missing = softHsmMissing();
  if (missing === undefined) return;
  console.log(`      (skipped: ${missing})`);
  context.skip();
}

const KEY_ATTRIBUTES = (ck: Pkcs11Module['ck'], label: string): Attribute[] => [
  { type: ck.CKA_CLASS, value: ck.CKO_SECRET_KEY },
  { type: ck.CKA_KEY_TYPE, value: ck.CKK_AES },
  { type: ck.CKA_TOKEN, value: true },
  { type: ck.CKA_PRIVATE, value: true },
  { type: ck.CKA_LABEL, value: label },
  { type: ck.CKA_ENCRYPT, value: true },
  { type: ck.CKA_DECRYPT, value: true },
  { type: ck.CKA_SENSITIVE, value: true },
  { type: ck.CKA_EXTRACTABLE, value: false },
];

/** `base` with the attributes of `overrides` replacing those of the same type. */
function withOverrides(base: Attribute[], overrides: Attribute[]): Attribute[] {
  return [...base.filter((a) => !overrides.some((o) => o.type === a.type)), ...overrides];
}

/** A SoftHSM configuration and token folder of its own, in a temp folder; remove() deletes it. */
export class SoftHsm {
  readonly modulePath = SOFTHSM_MODULE;
  readonly confPath: string;
  readonly #previousConf = process.env.SOFTHSM2_CONF;

  private constructor(readonly dir: string) {
    const tokens = join(dir, 'tokens');
    mkdirSync(tokens);
    this.confPath = join(dir, 'softhsm2.conf');
    writeFileSync(this.confPath, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    process.env.SOFTHSM2_CONF = this.confPath; // read by the module at C_Initialize, and by softhsm2-util
  }

  /** A fresh SoftHSM (its configuration in SOFTHSM2_CONF from now on). */
  static create(): SoftHsm {
    return new SoftHsm(mkdtempSync(join(tmpdir(), 'shredder-softhsm-')));
  }

  /** Initializes a new token in the free slot (`softhsm2-util --init-token --free`). */
  initToken(token: SoftHsmToken, soPin = `so-${token.pin}`): SoftHsmToken {
    execFileSync(SOFTHSM_UTIL, ['--init-token', '--free', '--label', token.label, '--pin', token.pin, '--so-pin', soPin], {
      env: { ...process.env, SOFTHSM2_CONF: this.confPath },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    return token;
  }

  /** Imports 32 bytes of AES key material as a token key `keyLabel` (sensitive, not extractable unless overridden). */
  importAesKey(token: SoftHsmToken, keyLabel: string, material: Uint8Array, overrides: Attribute[] = []): void {
    if (material.length !== 32) throw new RangeError('AES-256 key material is 32 bytes');
    this.withSession(token, (p11, session) => {
      const template = withOverrides([...KEY_ATTRIBUTES(p11.ck, keyLabel), { type: p11.ck.CKA_VALUE, value: Buffer.from(material) }], overrides);
      p11.api.C_CreateObject(session, template);
    });
  }

  /** Generates an AES-256 token key `keyLabel` inside the token (CKM_AES_KEY_GEN): its value is never outside it. */
  generateAesKey(token: SoftHsmToken, keyLabel: string, overrides: Attribute[] = []): void {
    this.withSession(token, (p11, session) => {
      // (without CKA_CLASS and CKA_KEY_TYPE, the first two: the mechanism implies them)
      const template = withOverrides([...KEY_ATTRIBUTES(p11.ck, keyLabel).slice(2), { type: p11.ck.CKA_VALUE_LEN, value: 32 }], overrides);
      p11.api.C_GenerateKey(session, { mechanism: p11.ck.CKM_AES_KEY_GEN }, template);
    });
  }

  /** C_GetAttributeValue(CKA_VALUE) of the token key `keyLabel`: throws for a sensitive key, as it should. */
  readKeyValue(token: SoftHsmToken, keyLabel: string): Buffer {
    return this.withSession(token, (p11, session) => {
      const { api, ck } = p11;
      api.C_FindObjectsInit(session, [{ type: ck.CKA_CLASS, value: ck.CKO_SECRET_KEY }, { type: ck.CKA_LABEL, value: keyLabel }]);
      const [key] = api.C_FindObjects(session, 1);
      api.C_FindObjectsFinal(session);
      if (!key) throw new Error(`no key "${keyLabel}" in token "${token.label}"`);
      return api.C_GetAttributeValue(session, key, [{ type: ck.CKA_VALUE }])[0].value;
    });
  }

  /** Runs `body` on a read-write session of `token`, logged in as the user. */
  withSession<T>(token: SoftHsmToken, body: (p11: Pkcs11Module, session: Handle) => T): T {
    const p11 = acquirePkcs11Module(this.modulePath);
    try {
      const slot = p11.slots().find((s) => s.label === token.label);
      if (!slot) throw new Error(`no SoftHSM token "${token.label}" (tokens made after C_Initialize are seen at the next one)`);
      const session = p11.openSession(slot.slot, token.pin, { readWrite: true });
      try {
        return body(p11, session.handle);
      } finally {
        session.close();
      }
    } finally {
      p11.release();
    }
  }

  /** Deletes the folder (tokens included) and puts SOFTHSM2_CONF back. */
  remove(): void {
    if (this.#previousConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = this.#previousConf;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
