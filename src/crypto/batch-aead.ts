// The batch AEAD interface shared by every algorithm, and the argument checks they all apply.
import { KEY_BYTES, NONCE_BYTES, TAG_BYTES, type OpenItem, type SealItem } from './aead-items.js';
import type { EnvelopeAead } from './envelope-batch.js';

export { KEY_BYTES, NONCE_BYTES, TAG_BYTES, type OpenItem, type SealItem };

/**
 * An AEAD with 32-byte keys, 12-byte nonces and 16-byte tags, driven a batch at a time: of items, or
 * of envelopes (the hot path, see envelope-batch.ts).
 */
export interface BatchAead extends EnvelopeAead {
  /** Registry name, e.g. 'chacha20-poly1305'. */
  readonly algorithm: string;
  /** Each result is prefix || ciphertext || tag. Throws TypeError/RangeError on a malformed item. */
  sealBatch(items: readonly SealItem[]): Uint8Array[];
  /** Each result is the plaintext, or null when authentication failed or the item is malformed. */
  openBatch(items: readonly OpenItem[]): (Uint8Array | null)[];
}


/** `label` names what `index` counts in the message (an item of the batch, or one of its keys). */
export function requireBytes(value: unknown, what: string, index: number, label = 'item'): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${label} ${index}: ${what} must be a Uint8Array, got ${value === null ? 'null' : typeof value}`);
  }
}

/** Throws a TypeError for a missing field and a RangeError for a wrong key or nonce length. */
export function checkSealItem(item: SealItem, index: number): void {
  if (item === null || typeof item !== 'object') throw new TypeError(`item ${index}: expected an object`);
  requireBytes(item.key, 'key', index);
  requireBytes(item.nonce, 'nonce', index);
  requireBytes(item.aad, 'aad', index);
  requireBytes(item.plaintext, 'plaintext', index);
  if (item.prefix !== undefined) requireBytes(item.prefix, 'prefix', index);
  checkKey(item.key, index);
  if (item.nonce.length !== NONCE_BYTES) {
    throw new RangeError(`item ${index}: nonce must be ${NONCE_BYTES} bytes, got ${item.nonce.length}`);
  }
}

/** Throws a TypeError unless `key` is a Uint8Array, a RangeError unless it has 32 bytes (`label`: see requireBytes). */
export function checkKey(key: unknown, index: number, label = 'item'): asserts key is Uint8Array {
  requireBytes(key, 'key', index, label);
  if (key.length !== KEY_BYTES) throw new RangeError(`${label} ${index}: key must be ${KEY_BYTES} bytes, got ${key.length}`);
}

/**
 * Open items: a field that is not a Uint8Array is a programming error (TypeError); a wrong key, nonce
 * or sealed length is data that cannot authenticate, so the item's result is null (returns false).
 */
export function isWellFormedOpenItem(item: OpenItem, index: number): boolean {
  if (item === null || typeof item !== 'object') throw new TypeError(`item ${index}: expected an object`);
  requireBytes(item.key, 'key', index);
  requireBytes(item.nonce, 'nonce', index);
  requireBytes(item.aad, 'aad', index);
  requireBytes(item.sealed, 'sealed', index);
  return item.key.length === KEY_BYTES && item.nonce.length === NONCE_BYTES && item.sealed.length >= TAG_BYTES;
}
