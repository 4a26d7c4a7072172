// The master keys a processor holds, by id: the current one wraps every new data key, the others
// only unwrap (keys wrapped before a rotation, until they are re-wrapped: see key-rewrapper.ts). It
// writes and reads the keys-topic value (contract: "Wire format v1: a keys-topic value"); what runs
// AES-256-GCM under each master key is its provider's MasterKeyCipher.
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import type { AlgorithmId } from '../crypto/aead-algorithms.js';
import { isRecordError, messageOf, TransientError } from '../errors/shredder-errors.js';
import {
  DATA_KEY_BYTES,
  parseWrappedKey,
  pseudonymOf,
  PSEUDONYM_AT,
  PSEUDONYM_BYTES,
  PSEUDONYMOUS_KEY_OVERHEAD,
  PSEUDONYMOUS_KEY_VERSION,
  SEALED_SUBJECT_AT,
  SUBJECT_NONCE_AT,
  WRAPPED_KEY_BYTES,
  WRAPPED_KEY_VERSION,
  WRAPPED_KEY_HEADER_BYTES,
  WRAPPED_KEY_NONCE_AT,
  WRAPPED_KEY_NONCE_BYTES,
  wrappedKeyHeader,
  WrappedKeyError,
} from '../wire/wrapped-key.js';
import { KeyMaterialPool } from './key-material.js';
import type { MasterKeyCipher } from './master-key-cipher.js';

export interface DataKey {
  algorithm: AlgorithmId;
  /** 8 bytes, random: names this generation of the subject's key. */
  keyId: Uint8Array;
  /** 32 bytes. */
  key: Uint8Array;
  /**
   * 16 bytes, random, of a key made with SHREDDER_RECORD_KEYS=pseudonym: the record key of this
   * generation's records and of its keys-topic value (v2, which carries the subject id sealed).
   */
  pseudonym?: Uint8Array;
}

/** What the subject keys of pseudonymous values are derived for (see Keyring.derive). */
const SUBJECT_KEY_PURPOSE = 'pseudonymous subject v1';
const SUBJECT_NONCE_BYTES = SEALED_SUBJECT_AT - SUBJECT_NONCE_AT;
const SUBJECT_TAG_BYTES = 16;

/** Random bytes of new keys, key ids and wrapping nonces (see key-material.ts). */
const keyMaterial = new KeyMaterialPool();

/**
 * The known answer a provider is checked with when an unwrap fails (see unwrap): a nonce no random
 * draw gives in practice, so the check never reuses a nonce of a real wrap, and a plaintext and
 * associated data of its own. Its output never leaves the process.
 */
const CANARY_NONCE = new Uint8Array(12).fill(0xff);
const CANARY_AAD = Buffer.from('kafka-shredder master key canary v1');
const CANARY_KEY = new Uint8Array(DATA_KEY_BYTES);

/** The master key could not be used (an HSM that is down, a closed session): never the record's fault. */
export class MasterKeyUnavailableError extends TransientError {
  override readonly name: string = 'MasterKeyUnavailableError';

  constructor(cipher: MasterKeyCipher, operation: string, cause: unknown) {
    super('master-key', `master key ${cipher.id} (${cipher.provider}) is unavailable: ${operation} failed: ${messageOf(cause)}`, { cause });
  }
}

/**
 * Writes the header of `dataKey`'s value under `cipher` into the value's first bytes, its wrapping nonce
 * fresh from the CSPRNG: the header, a view of the value.
 */
function valueHeader(value: Uint8Array, dataKey: DataKey, cipher: MasterKeyCipher): Uint8Array {
  keyMaterial.takeInto(value, WRAPPED_KEY_NONCE_AT, WRAPPED_KEY_NONCE_BYTES);
  const nonce = value.subarray(WRAPPED_KEY_NONCE_AT, WRAPPED_KEY_NONCE_AT + WRAPPED_KEY_NONCE_BYTES);
  const version = dataKey.pseudonym ? PSEUDONYMOUS_KEY_VERSION : WRAPPED_KEY_VERSION;
  return wrappedKeyHeader({ algorithm: dataKey.algorithm, keyId: dataKey.keyId, masterKeyId: cipher.id, nonce }, value, version);
}

/** Bytes of the keys-topic value of `dataKey` for `subject`: v1, or v2 when the key has a pseudonym. */
const valueBytes = (subject: Uint8Array, dataKey: DataKey): number => (dataKey.pseudonym ? PSEUDONYMOUS_KEY_OVERHEAD + subject.length : WRAPPED_KEY_BYTES);

export class Keyring {
  readonly #ciphers: ReadonlyMap<number, MasterKeyCipher>;
  readonly #current: MasterKeyCipher;
  #aadScratch = new Uint8Array(256);
  /** Subject keys of pseudonymous values by master key id, derived at first use. */
  readonly #subjectKeys = new Map<number, Buffer>();

  constructor(ciphers: readonly MasterKeyCipher[], currentId: number) {
    const byId = new Map<number, MasterKeyCipher>();
    for (const cipher of ciphers) {
      if (byId.has(cipher.id)) throw new RangeError(`master key id ${cipher.id} appears twice in the keyring`);
      byId.set(cipher.id, cipher);
    }
    const current = byId.get(currentId);
    if (!current) throw new RangeError(`the current master key id ${currentId} is not in the keyring (ids ${[...byId.keys()].join(', ') || 'none'})`);
    this.#ciphers = byId;
    this.#current = current;
  }

  /** The master key id that wraps new keys. */
  get currentId(): number {
    return this.#current.id;
  }

  /** Every master key id this keyring unwraps, ascending. */
  get ids(): number[] {
    return [...this.#ciphers.keys()].sort((a, b) => a - b);
  }

  /** The provider of the current master key (`local`, `pkcs11`). */
  get provider(): string {
    return this.#current.provider;
  }

  /** A fresh data key for a subject: 32 random bytes and a random 8-byte key id (and a random 16-byte pseudonym, if asked). */
  static newDataKey(algorithm: AlgorithmId, pseudonymous = false): DataKey {
    // plain Uint8Arrays (not Buffers): the hot path reads them byte by byte, monomorphically
    const bytes = keyMaterial.take(pseudonymous ? 40 + PSEUDONYM_BYTES : 40);
    const key: DataKey = { algorithm, keyId: bytes.subarray(0, 8), key: bytes.subarray(8, 40) };
    if (pseudonymous) key.pseudonym = bytes.subarray(40);
    return key;
  }

  /** A fresh pseudonym (16 random bytes) that names no key generation: for a record, tombstone or subject field no generation names. */
  static newPseudonym(): Uint8Array {
    return keyMaterial.take(PSEUDONYM_BYTES);
  }

  /**
   * `count` fresh data keys (newDataKey each), views of one buffer: a batch's keys, which live and die
   * together (an array each was one more object for the garbage collector to carry).
   */
  static newDataKeys(count: number, algorithm: AlgorithmId, pseudonymous = false): DataKey[] {
    const each = pseudonymous ? 40 + PSEUDONYM_BYTES : 40;
    const slab = new Uint8Array(count * each);
    const keys = new Array<DataKey>(count);
    for (let i = 0; i < count; i++) {
      const at = i * each;
      keyMaterial.takeInto(slab, at, each);
      keys[i] = { algorithm, keyId: slab.subarray(at, at + 8), key: slab.subarray(at + 8, at + 40) };
      if (pseudonymous) keys[i].pseudonym = slab.subarray(at + 40, at + each);
    }
    return keys;
  }

  /**
   * The keys-topic value for `dataKey`, bound to `subject`, under the current master key: the 74-byte
   * v1 value, or for a key with a pseudonym the v2 value, which also carries the subject id sealed.
   */
  wrap(subject: Uint8Array, dataKey: DataKey): Uint8Array {
    const cipher = this.#current;
    // (header, nonce and sealed key written in place: a backlog of new subjects wraps one key per record)
    const value = Buffer.alloc(valueBytes(subject, dataKey)); // (a Buffer: the key record takes it without a copy)
    const header = valueHeader(value, dataKey, cipher);
    let sealed: Uint8Array;
    try {
      sealed = cipher.seal(header.subarray(WRAPPED_KEY_NONCE_AT), this.#aad(header, subject), dataKey.key);
    } catch (err) {
      // wrapping fails for no fault of the subject's: only the provider can make it fail
      throw new MasterKeyUnavailableError(cipher, 'wrapping a data key', err);
    }
    value.set(sealed, WRAPPED_KEY_HEADER_BYTES);
    if (dataKey.pseudonym) this.#sealSubject(value, subject, dataKey.pseudonym, cipher);
    return value;
  }

  /**
   * Completes a v2 value whose first 74 bytes are written: its pseudonym, then the subject id sealed
   * under the subject key of `cipher`'s master key, bound to those first 90 bytes.
   */
  #sealSubject(value: Uint8Array, subject: Uint8Array, pseudonym: Uint8Array, cipher: MasterKeyCipher): void {
    if (pseudonym.length !== PSEUDONYM_BYTES) throw new RangeError(`a pseudonym is ${PSEUDONYM_BYTES} bytes`);
    value.set(pseudonym, PSEUDONYM_AT);
    keyMaterial.takeInto(value, SUBJECT_NONCE_AT, SUBJECT_NONCE_BYTES);
    const gcm = createCipheriv('aes-256-gcm', this.#subjectKey(cipher.id), value.subarray(SUBJECT_NONCE_AT, SEALED_SUBJECT_AT));
    gcm.setAAD(value.subarray(0, SUBJECT_NONCE_AT));
    const ciphertext = gcm.update(subject);
    gcm.final();
    value.set(ciphertext, SEALED_SUBJECT_AT);
    value.set(gcm.getAuthTag(), SEALED_SUBJECT_AT + subject.length);
  }

  /** The subject key of master key `id` (Keyring.derive under that key), derived once. */
  #subjectKey(id: number): Buffer {
    let key = this.#subjectKeys.get(id);
    if (!key) this.#subjectKeys.set(id, (key = this.derive(SUBJECT_KEY_PURPOSE, id)));
    return key;
  }

  /**
   * The subject id a v2 (pseudonymous) value carries, opened under its master key's subject key, its
   * pseudonym checked against `recordKey` (the record key it was read under), when given. Throws
   * WrappedKeyError (a record error) for a value that is not v2, of a master key not held, forged or
   * moved to another record key; MasterKeyUnavailableError when the provider fails.
   */
  subjectOf(value: Uint8Array, recordKey?: Uint8Array): Uint8Array {
    const wrapped = parseWrappedKey(value);
    if (!wrapped.pseudonym) throw new WrappedKeyError('not a pseudonymous keys-topic value (version 0x02)');
    if (recordKey !== undefined && !Buffer.from(wrapped.pseudonym).equals(recordKey)) throw new WrappedKeyError('a pseudonymous keys-topic value under a record key other than its pseudonym');
    const cipher = this.#ciphers.get(wrapped.masterKeyId);
    if (!cipher) throw new WrappedKeyError(`subject sealed with master key id ${wrapped.masterKeyId}, which is not in this process's keyring (ids ${this.ids.join(', ')})`);
    const end = value.length - SUBJECT_TAG_BYTES;
    const gcm = createDecipheriv('aes-256-gcm', this.#subjectKey(cipher.id), value.subarray(SUBJECT_NONCE_AT, SEALED_SUBJECT_AT));
    gcm.setAAD(value.subarray(0, SUBJECT_NONCE_AT));
    gcm.setAuthTag(value.subarray(end));
    const subject = gcm.update(value.subarray(SEALED_SUBJECT_AT, end));
    try {
      gcm.final(); // (node:crypto compares the tag in constant time)
    } catch {
      throw new WrappedKeyError('the sealed subject of a pseudonymous keys-topic value failed authentication (wrong master key, or forged)');
    }
    return new Uint8Array(subject);
  }

  /**
   * subjectOf(), or undefined when `value` is not a v2 value this keyring opens (junk, forged, another
   * master key's, moved to another record key): what a reader keeps under its record key, as any value
   * it cannot read. A provider that is down still throws.
   */
  sealedSubject(value: Uint8Array, recordKey: Uint8Array): Uint8Array | undefined {
    if (!pseudonymOf(value)) return undefined;
    try {
      return this.subjectOf(value, recordKey);
    } catch (err) {
      if (isRecordError(err)) return undefined;
      throw err;
    }
  }

  /**
   * wrap() of each subject's data key, in one pass of the provider when it has one (sealAll: the local
   * key), else key by key: a batch of new subjects. The values are views of one buffer (they live and
   * die with their batch: a caller that keeps one for long copies it).
   */
  wrapAll(subjects: readonly Uint8Array[], dataKeys: readonly DataKey[]): Uint8Array[] {
    if (subjects.length !== dataKeys.length) throw new RangeError(`${subjects.length} subjects for ${dataKeys.length} keys`);
    const cipher = this.#current;
    if (cipher.sealAll === undefined || subjects.length < 2) return subjects.map((subject, i) => this.wrap(subject, dataKeys[i]));
    let aadBytes = 0;
    let valuesBytes = 0;
    for (let i = 0; i < subjects.length; i++) {
      aadBytes += WRAPPED_KEY_HEADER_BYTES + subjects[i].length;
      valuesBytes += valueBytes(subjects[i], dataKeys[i]);
    }
    const aads = new Uint8Array(aadBytes); // (the batch's associated data, header || subject each)
    // (Buffers: a key record takes its value without a copy)
    const slab = Buffer.allocUnsafeSlow(valuesBytes); // (every byte written below)
    const values = new Array<Buffer>(subjects.length);
    const items = new Array<{ nonce: Uint8Array; aad: Uint8Array; plaintext: Uint8Array }>(subjects.length);
    let at = 0;
    let valueAt = 0;
    for (let i = 0; i < subjects.length; i++) {
      const value = slab.subarray(valueAt, (valueAt += valueBytes(subjects[i], dataKeys[i])));
      const header = valueHeader(value, dataKeys[i], cipher);
      const aad = aads.subarray(at, at + WRAPPED_KEY_HEADER_BYTES + subjects[i].length);
      aad.set(header, 0);
      aad.set(subjects[i], WRAPPED_KEY_HEADER_BYTES);
      at += aad.length;
      values[i] = value;
      items[i] = { nonce: header.subarray(WRAPPED_KEY_NONCE_AT), aad, plaintext: dataKeys[i].key };
    }
    let sealed: Uint8Array[];
    try {
      sealed = cipher.sealAll(items);
    } catch (err) {
      throw new MasterKeyUnavailableError(cipher, 'wrapping data keys', err);
    }
    for (let i = 0; i < values.length; i++) {
      values[i].set(sealed[i], WRAPPED_KEY_HEADER_BYTES);
      const pseudonym = dataKeys[i].pseudonym;
      if (pseudonym) this.#sealSubject(values[i], subjects[i], pseudonym, cipher);
    }
    return values;
  }

  /** The associated data of a wrapped key, header || subject, in a buffer reused call after call (a provider only borrows it). */
  #aad(header: Uint8Array, subject: Uint8Array): Uint8Array {
    const length = WRAPPED_KEY_HEADER_BYTES + subject.length;
    if (this.#aadScratch.length < length) this.#aadScratch = new Uint8Array(Math.max(length, 2 * this.#aadScratch.length));
    this.#aadScratch.set(header, 0);
    this.#aadScratch.set(subject, WRAPPED_KEY_HEADER_BYTES);
    return this.#aadScratch.subarray(0, length);
  }

  /**
   * Unwraps a keys-topic value of `subject`. Throws WrappedKeyError (a record error) when the value is
   * malformed, of a master key not held, or fails authentication (forged, another subject's); and
   * MasterKeyUnavailableError (transient) when the provider itself fails.
   */
  unwrap(subject: Uint8Array, value: Uint8Array): DataKey {
    const wrapped = parseWrappedKey(value);
    const cipher = this.#ciphers.get(wrapped.masterKeyId);
    if (!cipher) {
      throw new WrappedKeyError(`data key wrapped with master key id ${wrapped.masterKeyId}, which is not in this process's keyring (ids ${this.ids.join(', ')})`);
    }
    let key: Uint8Array;
    try {
      key = cipher.open(wrapped.nonce, this.#aad(wrapped.header, subject), wrapped.sealed);
    } catch (err) {
      // A provider reports a tag that does not verify and a device that is down alike (SoftHSM: both
      // CKR_GENERAL_ERROR). A known answer tells them apart: a provider that seals and opens it works,
      // so the value itself is at fault.
      this.#check(cipher, err);
      throw new WrappedKeyError('wrapped data key failed authentication (wrong master key, subject or forged)');
    }
    if (key.length !== DATA_KEY_BYTES) throw new WrappedKeyError(`unwrapped data key is ${key.length} bytes, ${DATA_KEY_BYTES} expected`);
    const dataKey: DataKey = { algorithm: wrapped.algorithm, keyId: Uint8Array.from(wrapped.keyId), key };
    if (wrapped.pseudonym) dataKey.pseudonym = Uint8Array.from(wrapped.pseudonym);
    return dataKey;
  }

  /** Throws MasterKeyUnavailableError (caused by `failure`) unless `cipher` seals and opens the known answer. */
  #check(cipher: MasterKeyCipher, failure: unknown): void {
    try {
      const opened = cipher.open(CANARY_NONCE, CANARY_AAD, cipher.seal(CANARY_NONCE, CANARY_AAD, CANARY_KEY));
      if (opened.length === CANARY_KEY.length && opened.every((b) => b === 0)) return;
    } catch {
      // (the provider fails: reported below with the unwrap's own error)
    }
    throw new MasterKeyUnavailableError(cipher, 'unwrapping a data key', failure);
  }

  /**
   * The same data key (algorithm, key id, key, pseudonym) wrapped under the current master key: what a
   * rotation writes for a key another master key wrapped (a v2 value's subject sealed under the current
   * master key's subject key).
   */
  rewrap(subject: Uint8Array, value: Uint8Array): Uint8Array {
    return this.wrap(subject, this.unwrap(subject, value));
  }

  /**
   * A secret derived from the current master key (or master key `id`) for `purpose` (the logs' subject
   * references, the audit trail's, pseudonymous values' subject keys): the master key seals 32 zero
   * bytes under a fixed nonce and the purpose as associated data, which any provider can do, an HSM
   * that never releases its key included.
   */
  derive(purpose: string, id = this.#current.id): Buffer {
    const cipher = this.#ciphers.get(id);
    if (!cipher) throw new WrappedKeyError(`master key id ${id} is not in this process's keyring (ids ${this.ids.join(', ')})`);
    let sealed: Uint8Array;
    try {
      sealed = cipher.seal(new Uint8Array(12), Buffer.from(`kafka-shredder derived key: ${purpose}`), new Uint8Array(DATA_KEY_BYTES));
    } catch (err) {
      throw new MasterKeyUnavailableError(cipher, `deriving the ${purpose} key`, err);
    }
    return createHmac('sha256', sealed.subarray(0, DATA_KEY_BYTES)).update(purpose).digest();
  }
}
