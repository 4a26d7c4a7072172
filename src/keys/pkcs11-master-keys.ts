// The pkcs11 master-key provider (SHREDDER_KEY_PROVIDER=pkcs11): the master keys are AES-256 secret
// keys inside an HSM token, which never leave it; wrapping and unwrapping a data key is one
// CKM_AES_GCM operation in the token (96-bit nonce from the keyring, i.e. from this host's CSPRNG,
// the keyring's associated data, 128-bit tag), so the keys-topic value is byte-identical to the local
// provider's for the same key material.
//
// Keys are found by label: every CKO_SECRET_KEY/CKK_AES object labelled `<prefix><id>`, <id> a uint32
// in decimal without leading zeros (`kafka-shredder-master-key-1`), is master key <id>. A key that
// can leave the token in the clear (CKA_SENSITIVE false) or wrapped (CKA_EXTRACTABLE true) is refused.
//
// One read-only session serves every key of the source and is used synchronously (C_Encrypt, not
// C_EncryptAsync): a session must not run two operations at once, and this process calls it from
// its one JavaScript thread, one wrap at a time. A remote HSM's round trip blocks the event loop for
// that time; new-subject key creation is rare next to records, and unwraps are cached by the key store.
import { ConfigurationError } from '../errors/shredder-errors.js';
import {
  type Attribute,
  boolValue,
  describePkcs11Error,
  type Handle,
  type Pkcs11Module,
  type Pkcs11Session,
  acquirePkcs11Module,
  ulongValue,
} from './pkcs11-module.js';
import type { MasterKeyCipher, MasterKeySource } from './master-key-cipher.js';
import { bufferView } from '../wire/buffer-view.js';

export interface Pkcs11MasterKeyOptions {
  /** SHREDDER_PKCS11_MODULE: path of the PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`, a vendor's .so). */
  modulePath: string;
  /** SHREDDER_PKCS11_TOKEN_LABEL: the token's label. Exactly one of this and `slot`. */
  tokenLabel?: string;
  /** SHREDDER_PKCS11_SLOT: index (from 0) in the module's list of slots with a token present. Exactly one of this and `tokenLabel`. */
  slot?: number;
  /** SHREDDER_PKCS11_PIN (or SHREDDER_PKCS11_PIN_FILE): the user PIN. Never logged nor put in an error. */
  pin: string;
  /** SHREDDER_PKCS11_KEY_LABEL: the labels' prefix; master key <id> is labelled `<prefix><id>`. */
  keyLabelPrefix: string;
  /** Told about keys that are usable but weaker than generated in the token (imported: not always sensitive / once extractable). */
  warn?: (message: string) => void;
  /** Loads pkcs11js (tests: a missing package). */
  require?: (id: string) => unknown;
}

export class Pkcs11MasterKeyError extends ConfigurationError {
  override readonly name: string = 'Pkcs11MasterKeyError';
}

const TOKEN_VARIABLES = 'SHREDDER_PKCS11_TOKEN_LABEL or SHREDDER_PKCS11_SLOT';
const PIN_VARIABLES = 'SHREDDER_PKCS11_PIN (or SHREDDER_PKCS11_PIN_FILE)';
const AES_256_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MAX_ID = 0xffffffff;

/** A master key in the token: AES-256-GCM by C_EncryptInit/C_Encrypt and C_DecryptInit/C_Decrypt on the source's session. */
class Pkcs11MasterKey implements MasterKeyCipher {
  readonly provider = 'pkcs11';
  readonly #token: Pkcs11Module;
  readonly #session: () => Handle;
  readonly #key: Handle;

  constructor(readonly id: number, readonly label: string, token: Pkcs11Module, session: () => Handle, key: Handle) {
    this.#token = token;
    this.#session = session;
    this.#key = key;
  }

  #mechanism(nonce: Uint8Array, aad: Uint8Array) {
    if (nonce.length !== IV_BYTES) throw new RangeError(`the nonce must be ${IV_BYTES} bytes, got ${nonce.length}`);
    const { ck } = this.#token;
    // CK_GCM_PARAMS (pkcs11js CK_PARAMS_GCM requires ulIvBits; the older CK_PARAMS_AES_GCM leaves it unset)
    return { mechanism: ck.CKM_AES_GCM, parameter: { type: ck.CK_PARAMS_GCM, iv: bufferView(nonce), ivBits: IV_BYTES * 8, aad: bufferView(aad), tagBits: TAG_BYTES * 8 } };
  }

  seal(nonce: Uint8Array, aad: Uint8Array, dataKey: Uint8Array): Uint8Array {
    const session = this.#session();
    const { api } = this.#token;
    api.C_EncryptInit(session, this.#mechanism(nonce, aad), this.#key);
    const sealed = api.C_Encrypt(session, bufferView(dataKey), Buffer.alloc(dataKey.length + TAG_BYTES));
    if (sealed.length !== dataKey.length + TAG_BYTES) throw new Pkcs11MasterKeyError(`${this.label}: C_Encrypt returned ${sealed.length} bytes, ${dataKey.length + TAG_BYTES} expected`);
    return sealed;
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
    if (sealed.length < TAG_BYTES) throw new RangeError(`sealed data must be at least ${TAG_BYTES} bytes`);
    const session = this.#session();
    const { api } = this.#token;
    api.C_DecryptInit(session, this.#mechanism(nonce, aad), this.#key);
    // a tag that does not verify throws here and ends the operation (SoftHSM 2.6: CKR_GENERAL_ERROR; the
    // standard says CKR_ENCRYPTED_DATA_INVALID); the output buffer must hold the input's length (SoftHSM)
    const out = Buffer.alloc(sealed.length);
    const plain = api.C_Decrypt(session, bufferView(sealed), out);
    const key = new Uint8Array(plain); // a copy of its own (as the local provider returns)
    out.fill(0);
    return key;
  }
}

/** A Buffer over the same bytes (pkcs11js takes Buffers only). */
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&');
}

/** The master key id a label names, or undefined when it is not `<prefix><uint32 in decimal>`. */
export function masterKeyIdOfLabel(prefix: string, label: string): number | undefined {
  const match = new RegExp(`^${escapeRegExp(prefix)}(0|[1-9][0-9]{0,9})$`, 'u').exec(label);
  if (!match) return undefined;
  const id = Number(match[1]);
  return id <= MAX_ID ? id : undefined;
}

function selectSlot(token: Pkcs11Module, options: Pkcs11MasterKeyOptions): { slot: Handle; name: string } {
  const { tokenLabel, slot } = options;
  if ((tokenLabel === undefined) === (slot === undefined)) {
    throw new Pkcs11MasterKeyError(`set one of ${TOKEN_VARIABLES} to choose the token (${tokenLabel === undefined ? 'neither' : 'both'} set)`);
  }
  const slots = token.slots();
  const present = slots.map((s) => `${s.index}: ${s.initialized ? `"${s.label}"` : '(not initialized)'}`).join(', ') || 'none';
  if (slot !== undefined) {
    const found = slots.find((s) => s.index === slot && s.initialized);
    if (!found) throw new Pkcs11MasterKeyError(`SHREDDER_PKCS11_SLOT=${slot}: no token in that slot of ${token.path} (slots with a token: ${present})`);
    return { slot: found.slot, name: `slot ${slot} ("${found.label}")` };
  }
  const found = slots.filter((s) => s.initialized && s.label === tokenLabel);
  if (found.length === 0) throw new Pkcs11MasterKeyError(`SHREDDER_PKCS11_TOKEN_LABEL="${tokenLabel}": no such token in ${token.path} (slots with a token: ${present})`);
  if (found.length > 1) throw new Pkcs11MasterKeyError(`SHREDDER_PKCS11_TOKEN_LABEL="${tokenLabel}": ${found.length} tokens carry that label (slots ${found.map((s) => s.index).join(', ')}); set SHREDDER_PKCS11_SLOT instead`);
  return { slot: found[0].slot, name: `token "${tokenLabel}"` };
}

function login(token: Pkcs11Module, slot: Handle, name: string, pin: string): Pkcs11Session {
  if (pin.length === 0) throw new Pkcs11MasterKeyError(`${PIN_VARIABLES} is empty: the user PIN of ${name} is needed`);
  try {
    return token.openSession(slot, pin);
  } catch (error) {
    throw new Pkcs11MasterKeyError(`logging in to ${name} with ${PIN_VARIABLES} failed (${describePkcs11Error(error)})`);
  }
}

/** Every CKO_SECRET_KEY/CKK_AES object of the session's token. */
function aesSecretKeys(token: Pkcs11Module, session: Handle): Handle[] {
  const { api, ck } = token;
  api.C_FindObjectsInit(session, [{ type: ck.CKA_CLASS, value: ck.CKO_SECRET_KEY }, { type: ck.CKA_KEY_TYPE, value: ck.CKK_AES }]);
  const found: Handle[] = [];
  try {
    for (let batch = api.C_FindObjects(session, 64); batch.length > 0; batch = api.C_FindObjects(session, 64)) found.push(...batch);
  } finally {
    api.C_FindObjectsFinal(session);
  }
  return found;
}

interface KeyObject { handle: Handle; id: number; label: string }

/**
 * The master keys among the token's AES keys, checked: AES-256, encrypt and decrypt, sensitive and not
 * extractable; and the labels of the other AES keys (for the error when there is no master key).
 */
function masterKeyObjects(token: Pkcs11Module, session: Handle, name: string, options: Pkcs11MasterKeyOptions): { keys: KeyObject[]; others: string[] } {
  const { api, ck } = token;
  const prefix = options.keyLabelPrefix;
  const byId = new Map<number, KeyObject>();
  const others: string[] = [];
  for (const handle of aesSecretKeys(token, session)) {
    const [label] = api.C_GetAttributeValue(session, handle, [{ type: ck.CKA_LABEL }]);
    const text = label.value.toString('utf8');
    const id = masterKeyIdOfLabel(prefix, text);
    if (id === undefined) {
      others.push(text);
      continue;
    }
    if (byId.has(id)) throw new Pkcs11MasterKeyError(`${name} holds more than one AES key labelled "${text}": SHREDDER_PKCS11_KEY_LABEL must name one key per id`);
    const attributes: Attribute[] = [ck.CKA_VALUE_LEN, ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE].map((type) => ({ type }));
    const [length, encrypt, decrypt, sensitive, extractable, alwaysSensitive, neverExtractable] = api.C_GetAttributeValue(session, handle, attributes).map((a) => a.value);
    const refuse = (why: string) => new Pkcs11MasterKeyError(`master key "${text}" in ${name} ${why}`);
    if (ulongValue(length) !== AES_256_BYTES) throw refuse(`is AES-${ulongValue(length) * 8}; master keys are AES-256 (CKA_VALUE_LEN 32)`);
    if (!boolValue(encrypt) || !boolValue(decrypt)) throw refuse('does not allow both CKA_ENCRYPT and CKA_DECRYPT');
    if (!boolValue(sensitive)) throw refuse('is not sensitive (CKA_SENSITIVE false: its value can be read out of the token); create it with CKA_SENSITIVE true');
    if (boolValue(extractable)) throw refuse('is extractable (CKA_EXTRACTABLE true: it can be wrapped out of the token); create it with CKA_EXTRACTABLE false');
    if (!boolValue(alwaysSensitive) || !boolValue(neverExtractable)) {
      options.warn?.(`master key "${text}" in ${name} was imported or once extractable (CKA_ALWAYS_SENSITIVE/CKA_NEVER_EXTRACTABLE false): its value has existed outside the token`);
    }
    byId.set(id, { handle, id, label: text });
  }
  return { keys: [...byId.values()].sort((a, b) => a.id - b.id), others };
}

/** The labels of a token's other AES keys, for an error (labels are not secret), at most 10. */
function labelList(labels: string[]): string {
  if (labels.length === 0) return 'the user sees no AES key in it';
  const shown = labels.slice(0, 10).map((l) => `"${l}"`).join(', ');
  return `AES keys there: ${shown}${labels.length > 10 ? `, and ${labels.length - 10} more` : ''}`;
}

/** Runs cleanup steps after a failure, each one whatever the others do, without masking the failure. */
function quietly(...steps: (() => void)[]): void {
  for (const step of steps) {
    try {
      step();
    } catch {
      // the original error is the one to report
    }
  }
}

/**
 * Opens the master keys `<keyLabelPrefix><id>` of a PKCS#11 token: initializes the module (shared with
 * other sources of this process), logs in as the user on one read-only session, and finds the keys.
 * close() logs out, closes the session and finalizes the module when no other source uses it.
 */
export function openPkcs11MasterKeys(options: Pkcs11MasterKeyOptions): MasterKeySource {
  if (!options.modulePath) throw new Pkcs11MasterKeyError('SHREDDER_KEY_PROVIDER=pkcs11 needs SHREDDER_PKCS11_MODULE, the path of the PKCS#11 module');
  if (!options.keyLabelPrefix) throw new Pkcs11MasterKeyError('SHREDDER_PKCS11_KEY_LABEL (the master keys\' label prefix) is empty');
  let token: Pkcs11Module;
  try {
    token = acquirePkcs11Module(options.modulePath, options.require);
  } catch (error) {
    throw error instanceof Pkcs11MasterKeyError ? error : new Pkcs11MasterKeyError((error as Error).message);
  }
  let session: Pkcs11Session | undefined;
  try {
    const { slot, name } = selectSlot(token, options);
    session = login(token, slot, name, options.pin);
    const { keys: objects, others } = masterKeyObjects(token, session.handle, name, options);
    if (objects.length === 0) {
      throw new Pkcs11MasterKeyError(
        `no master key in ${name}: SHREDDER_PKCS11_KEY_LABEL="${options.keyLabelPrefix}" looks for AES secret keys labelled ` +
          `"${options.keyLabelPrefix}<id>" (<id> a uint32 in decimal, e.g. "${options.keyLabelPrefix}1"); ${labelList(others)}`,
      );
    }
    const open = session;
    let closed = false;
    const handle = () => {
      if (closed) throw new Pkcs11MasterKeyError(`the PKCS#11 session of ${name} is closed`);
      return open.handle;
    };
    return {
      ciphers: objects.map((o) => new Pkcs11MasterKey(o.id, o.label, token, handle, o.handle)),
      async close() {
        if (closed) return;
        closed = true;
        try {
          open.close();
        } finally {
          token.release();
        }
      },
    };
  } catch (error) {
    quietly(() => session?.close(), () => token.release());
    throw error instanceof Pkcs11MasterKeyError ? error : new Pkcs11MasterKeyError(`PKCS#11 token of ${options.modulePath}: ${describePkcs11Error(error)}`);
  }
}
