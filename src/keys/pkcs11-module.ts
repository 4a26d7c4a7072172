// PKCS#11 plumbing under the pkcs11 master-key provider (pkcs11-master-keys.ts): loads the optional
// native binding (pkcs11js) lazily, so the product runs without it until SHREDDER_KEY_PROVIDER=pkcs11
// asks for it, and shares one loaded module per path between every source in the process. A PKCS#11
// module is initialized once per process (a second C_Initialize is CKR_CRYPTOKI_ALREADY_INITIALIZED,
// and one C_Finalize ends every session of every user of it), and a token's login is per process
// too (all sessions on a token share it; C_Logout logs them all out): both are counted here.
//
// Only the part of pkcs11js this project calls is typed below (not imported from pkcs11js's own
// declarations), so the build does not depend on the optional package being installed.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { resolve } from 'node:path';

/** A slot, session or object handle (a CK_ULONG in a Buffer). */
export type Handle = Buffer;
export interface Attribute { type: number; value?: number | boolean | string | Buffer }
export interface Mechanism { mechanism: number; parameter?: Buffer | number | { type: number; [name: string]: unknown } }
export interface TokenInfo { label: string; manufacturerID: string; model: string; serialNumber: string; flags: number }

/** The calls of a pkcs11js `PKCS11` this project makes (synchronous forms only). */
export interface Pkcs11Api {
  load(path: string): void;
  C_Initialize(): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent?: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): TokenInfo;
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_Login(session: Handle, userType: number, pin?: string): void;
  C_Logout(session: Handle): void;
  C_FindObjectsInit(session: Handle, template: Attribute[]): void;
  C_FindObjects(session: Handle, maxObjectCount: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_GetAttributeValue(session: Handle, object: Handle, template: Attribute[]): { type: number; value: Buffer }[];
  C_CreateObject(session: Handle, template: Attribute[]): Handle;
  C_GenerateKey(session: Handle, mechanism: Mechanism, template: Attribute[]): Handle;
  C_EncryptInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_Encrypt(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_DecryptInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_Decrypt(session: Handle, inData: Buffer, outData: Buffer): Buffer;
}

const CONSTANTS = [
  'CKA_CLASS', 'CKA_KEY_TYPE', 'CKA_LABEL', 'CKA_TOKEN', 'CKA_PRIVATE', 'CKA_VALUE', 'CKA_VALUE_LEN',
  'CKA_ENCRYPT', 'CKA_DECRYPT', 'CKA_SENSITIVE', 'CKA_EXTRACTABLE', 'CKA_ALWAYS_SENSITIVE', 'CKA_NEVER_EXTRACTABLE',
  'CKO_SECRET_KEY', 'CKK_AES', 'CKM_AES_GCM', 'CKM_AES_KEY_GEN', 'CK_PARAMS_GCM',
  'CKF_SERIAL_SESSION', 'CKF_RW_SESSION', 'CKF_TOKEN_INITIALIZED', 'CKU_USER',
  'CKR_CRYPTOKI_ALREADY_INITIALIZED', 'CKR_USER_ALREADY_LOGGED_IN',
] as const;
export type Pkcs11Constant = (typeof CONSTANTS)[number];

/** pkcs11js: the `PKCS11` class and the PKCS#11 constants used here. */
export type Pkcs11Binding = { PKCS11: new () => Pkcs11Api } & Readonly<Record<Pkcs11Constant, number>>;

export const PKCS11JS = 'pkcs11js';
const nodeRequire = createRequire(import.meta.url);
let binding: Pkcs11Binding | undefined;

/** pkcs11js, loaded on first use; a clear error when the optional dependency is not installed or did not build. */
export function loadPkcs11js(require: (id: string) => unknown = nodeRequire): Pkcs11Binding {
  if (binding && require === nodeRequire) return binding;
  let loaded: Pkcs11Binding;
  try {
    loaded = require(PKCS11JS) as Pkcs11Binding;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND';
    throw new Error(
      `SHREDDER_KEY_PROVIDER=pkcs11 needs the optional dependency ${PKCS11JS} (a native addon built by node-gyp at install), ` +
        `which ${missing ? 'is not installed' : 'does not load'}: install it with \`npm install ${PKCS11JS}@2.1.7\` ` +
        `(Python 3, make and a C++ compiler are needed to build it) (${(error as Error).message.split('\n')[0]})`,
      { cause: error },
    );
  }
  const absent = CONSTANTS.filter((name) => typeof loaded[name] !== 'number');
  if (typeof loaded.PKCS11 !== 'function' || absent.length > 0) {
    throw new Error(`the installed ${PKCS11JS} is not the expected one (2.1.7): missing ${absent.join(', ') || 'PKCS11'}`);
  }
  if (require === nodeRequire) binding = loaded;
  return loaded;
}

/** `method: CKR_...` of a pkcs11js error (they carry no PIN: pkcs11js never puts arguments in messages). */
export function describePkcs11Error(error: unknown): string {
  const { method, message } = error as { method?: string; message?: string };
  return method ? `${method}: ${message}` : String(message ?? error);
}

/** Whether `error` is the PKCS#11 return value `code` (a pkcs11js Pkcs11Error carries it in `code`). */
export function isCkr(error: unknown, code: number): boolean {
  return (error as { code?: unknown }).code === code;
}

/** A CK_ULONG attribute value (CKA_VALUE_LEN, ...): native byte order, 4 or 8 bytes. */
export function ulongValue(value: Buffer): number {
  const little = endianness() === 'LE';
  if (value.length === 8) return Number(little ? value.readBigUInt64LE() : value.readBigUInt64BE());
  return little ? value.readUInt32LE() : value.readUInt32BE();
}

/** A CK_BBOOL attribute value. */
export function boolValue(value: Buffer): boolean {
  return value.length > 0 && value[0] !== 0;
}

/** Trims the blank padding of a CK_UTF8CHAR[32] token label. */
export function tokenLabel(info: TokenInfo): string {
  return info.label.replace(/[\s\0]+$/u, '');
}

interface SharedModule {
  readonly path: string;
  readonly api: Pkcs11Api;
  readonly ck: Pkcs11Binding;
  /** Open users (sources, test helpers); C_Finalize when the last one leaves, if this process initialized it. */
  users: number;
  initializedHere: boolean;
  /** Logged-in sessions per token (slot id, hex). */
  readonly logins: Map<string, number>;
}

// One per module path, loaded once and kept loaded: dlclose and a second dlopen of a module is not
// something every PKCS#11 module (or the OpenSSL inside it) survives, a C_Finalize and C_Initialize is.
const modules = new Map<string, SharedModule>();

/** A PKCS#11 module initialized for one user; release() once done with it. */
export interface Pkcs11Module {
  readonly path: string;
  readonly api: Pkcs11Api;
  readonly ck: Pkcs11Binding;
  /** The slots with a token present (C_GetSlotList(CK_TRUE)), in the module's order; `index` is the position in that list. */
  slots(): { slot: Handle; index: number; label: string; initialized: boolean }[];
  /** A serial session on `slot`, logged in as the user with `pin`; close() it. */
  openSession(slot: Handle, pin: string, options?: { readWrite?: boolean }): Pkcs11Session;
  release(): void;
}

export interface Pkcs11Session {
  readonly handle: Handle;
  close(): void;
}

/** Loads (once) and initializes (once per process) the PKCS#11 module at `modulePath`. */
export function acquirePkcs11Module(modulePath: string, require?: (id: string) => unknown): Pkcs11Module {
  const ck = loadPkcs11js(require);
  const path = resolve(modulePath);
  if (!existsSync(path)) throw new Error(`SHREDDER_PKCS11_MODULE: no PKCS#11 module at ${path}`);
  let shared = modules.get(path);
  if (!shared) {
    const api = new ck.PKCS11();
    try {
      api.load(path);
    } catch (error) {
      throw new Error(`SHREDDER_PKCS11_MODULE: ${path} does not load as a PKCS#11 module (${describePkcs11Error(error)})`, { cause: error });
    }
    shared = { path, api, ck, users: 0, initializedHere: false, logins: new Map() };
    modules.set(path, shared);
  }
  if (shared.users === 0) {
    try {
      shared.api.C_Initialize();
      shared.initializedHere = true;
    } catch (error) {
      if (!isCkr(error, ck.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
        throw new Error(`SHREDDER_PKCS11_MODULE: ${path} failed to initialize (${describePkcs11Error(error)})`, { cause: error });
      }
      shared.initializedHere = false; // someone else in this process initialized it: leave it to them
    }
  }
  shared.users++;
  return moduleHandle(shared);
}

function moduleHandle(shared: SharedModule): Pkcs11Module {
  const { api, ck } = shared;
  let released = false;
  return {
    path: shared.path,
    api,
    ck,
    slots: () =>
      api.C_GetSlotList(true).map((slot, index) => {
        const info = api.C_GetTokenInfo(slot);
        return { slot, index, label: tokenLabel(info), initialized: (info.flags & ck.CKF_TOKEN_INITIALIZED) !== 0 };
      }),
    openSession(slot, pin, { readWrite = false } = {}) {
      const key = slot.toString('hex');
      const handle = api.C_OpenSession(slot, ck.CKF_SERIAL_SESSION | (readWrite ? ck.CKF_RW_SESSION : 0));
      try {
        api.C_Login(handle, ck.CKU_USER, pin);
      } catch (error) {
        // login is per process and token: another session of this process may have done it (then the
        // token does not check this PIN again)
        if (!isCkr(error, ck.CKR_USER_ALREADY_LOGGED_IN)) {
          api.C_CloseSession(handle);
          throw error;
        }
      }
      shared.logins.set(key, (shared.logins.get(key) ?? 0) + 1);
      let closed = false;
      return {
        handle,
        close() {
          if (closed) return;
          closed = true;
          const left = (shared.logins.get(key) ?? 1) - 1;
          if (left > 0) shared.logins.set(key, left);
          else shared.logins.delete(key);
          try {
            if (left === 0) api.C_Logout(handle); // the last one: the token's other sessions are not ours
          } finally {
            api.C_CloseSession(handle);
          }
        },
      };
    },
    release() {
      if (released) return;
      released = true;
      shared.users--;
      if (shared.users === 0 && shared.initializedHere) {
        shared.initializedHere = false;
        shared.logins.clear();
        api.C_Finalize();
      }
    },
  };
}
