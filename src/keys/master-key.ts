// The master key wraps every subject's data key (AES-256-GCM, node:crypto) into the keys-topic value.
// Data keys only ever leave the process wrapped; the master key never leaves it.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { AlgorithmId } from '../crypto/aead-algorithms.js';
import {
  DATA_KEY_BYTES,
  parseWrappedKey,
  WRAPPED_KEY_BYTES,
  wrappedKeyHeader,
  WrappedKeyError,
} from '../wire/wrapped-key.js';
import { KeyMaterialPool } from './key-material.js';

export interface DataKey {
  algorithm: AlgorithmId;
  /** 8 bytes, random: names this generation of the subject's key. */
  keyId: Uint8Array;
  /** 32 bytes. */
  key: Uint8Array;
}

/** Random bytes of new keys, key ids and wrapping nonces (see key-material.ts). */
const keyMaterial = new KeyMaterialPool();

/** The associated data of a wrapped key: its header || subject. */
function aad(header: Uint8Array, subject: Uint8Array): Buffer {
  return Buffer.concat([header, subject]);
}

export class MasterKey {
  readonly #key: Buffer;

  constructor(key: Uint8Array, readonly id: number) {
    if (key.length !== 32) throw new RangeError(`the master key must be 32 bytes, got ${key.length}`);
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError('the master key id must be a uint32');
    this.#key = Buffer.from(key);
  }

  /** A fresh data key for a subject: 32 random bytes and a random 8-byte key id. */
  static newDataKey(algorithm: AlgorithmId): DataKey {
    // plain Uint8Arrays (not Buffers): the hot path reads them byte by byte, monomorphically
    const bytes = keyMaterial.take(40);
    return { algorithm, keyId: bytes.subarray(0, 8), key: bytes.subarray(8, 40) };
  }

  /** The 74-byte keys-topic value for `dataKey`, bound to `subject`. */
  wrap(subject: Uint8Array, dataKey: DataKey): Uint8Array {
    const header = wrappedKeyHeader({ algorithm: dataKey.algorithm, keyId: dataKey.keyId, masterKeyId: this.id, nonce: keyMaterial.take(12) });
    const cipher = createCipheriv('aes-256-gcm', this.#key, header.subarray(14, 26), { authTagLength: 16 });
    cipher.setAAD(aad(header, subject));
    const ciphertext = cipher.update(dataKey.key);
    cipher.final();
    const value = Buffer.alloc(WRAPPED_KEY_BYTES); // (a Buffer: the key record takes it without a copy)
    value.set(header, 0);
    value.set(ciphertext, 26);
    value.set(cipher.getAuthTag(), 58);
    return value;
  }

  /** Unwraps a keys-topic value of `subject`; WrappedKeyError when it is malformed, foreign or forged. */
  unwrap(subject: Uint8Array, value: Uint8Array): DataKey {
    const wrapped = parseWrappedKey(value);
    if (wrapped.masterKeyId !== this.id) {
      throw new WrappedKeyError(`data key wrapped with master key id ${wrapped.masterKeyId}, this process has id ${this.id}`);
    }
    const decipher = createDecipheriv('aes-256-gcm', this.#key, wrapped.nonce, { authTagLength: 16 });
    decipher.setAAD(aad(wrapped.header, subject));
    decipher.setAuthTag(wrapped.sealed.subarray(DATA_KEY_BYTES));
    const key = decipher.update(wrapped.sealed.subarray(0, DATA_KEY_BYTES));
    try {
      decipher.final(); // authenticates: throws on a forged tag, another subject, or another master key
    } catch {
      throw new WrappedKeyError('wrapped data key failed authentication (wrong master key, subject or forged)');
    }
    return { algorithm: wrapped.algorithm, keyId: Uint8Array.from(wrapped.keyId), key: new Uint8Array(key) };
  }
}
