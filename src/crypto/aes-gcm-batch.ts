// AES-256-GCM (NIST SP 800-38D) sealing of many small items under one key in one pass: what the local
// master key does to a batch of new subjects' data keys. node:crypto's GCM costs some 5 µs of object
// set-up and calls per item, whatever its size, and a backlog of new subjects wraps one key per record.
// Here every AES block of the batch (each item's J0, J0+1, ...: its tag mask and keystream, 96-bit
// nonces) comes from one call of an AES-256-ECB cipher kept for the key's life (OpenSSL: AES-NI,
// constant time), the text is XORed with its keystream, and every tag comes from one call of the wasm
// core's GHASH (assembly/ghash.ts, constant time). The bytes equal node:crypto's GCM, which the tests
// hold it to, with the Wycheproof vectors.
// Only sealing: unwrapping stays node:crypto's GCM, whose tag check is OpenSSL's.
import { createCipheriv, type Cipher } from 'node:crypto';
import { KEY_BYTES, NONCE_BYTES, TAG_BYTES } from './aead-items.js';
import { type CoreExports, instantiateCoreSync } from './wasm-module.js';

const BLOCK = 16;

export interface GcmSealItem {
  /** 12 bytes, never used twice under the key. */
  nonce: Uint8Array;
  aad: Uint8Array;
  plaintext: Uint8Array;
}

const blocksOf = (bytes: number): number => Math.ceil(bytes / BLOCK);

export class AesGcmBatchSealer {
  readonly #ecb: Cipher;
  /** The hash key H = AES(K, 0^128): secret, as the key is. */
  readonly #hashKey: Uint8Array;
  private core: CoreExports | undefined;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new RangeError(`an AES-256 key is ${KEY_BYTES} bytes, got ${key.length}`);
    // (ECB over counter blocks is CTR mode's keystream; without padding and never finished, every
    // update() maps whole blocks to whole blocks)
    this.#ecb = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    this.#hashKey = new Uint8Array(this.#ecb.update(new Uint8Array(BLOCK)));
  }

  /** Each item sealed: its ciphertext || 16-byte tag, views of one buffer. */
  seal(items: readonly GcmSealItem[]): Uint8Array[] {
    let counterBlocks = 0;
    let hashBlocks = 0;
    let outBytes = 0;
    for (const { nonce, aad, plaintext } of items) {
      if (nonce.length !== NONCE_BYTES) throw new RangeError(`a GCM nonce here is ${NONCE_BYTES} bytes, got ${nonce.length}`);
      counterBlocks += 1 + blocksOf(plaintext.length);
      hashBlocks += blocksOf(aad.length) + blocksOf(plaintext.length) + 1;
      outBytes += plaintext.length + TAG_BYTES;
    }
    const counters = new Uint8Array(counterBlocks * BLOCK);
    const counterView = new DataView(counters.buffer);
    let at = 0;
    for (const { nonce, plaintext } of items) {
      const count = 1 + blocksOf(plaintext.length);
      for (let j = 0; j < count; j++, at += BLOCK) {
        counters.set(nonce, at);
        counterView.setUint32(at + NONCE_BYTES, j + 1); // J0 = nonce || 1, then 2, 3, ...
      }
    }
    const keystream = this.#ecb.update(counters);

    const core = (this.core ??= instantiateCoreSync());
    const tableBytes = items.length * core.GHASH_ITEM.value;
    const base = core.reserve(BLOCK + tableBytes + hashBlocks * BLOCK + items.length * TAG_BYTES);
    if (base === 0) throw new RangeError('the batch does not fit the crypto core\'s memory');
    const memory = new Uint8Array(core.memory.buffer);
    const view = new DataView(core.memory.buffer);
    const hashKeyAt = base;
    const tableAt = hashKeyAt + BLOCK;
    let blocksAt = tableAt + tableBytes;
    const tagsStart = blocksAt + hashBlocks * BLOCK;
    const end = tagsStart + items.length * TAG_BYTES;
    memory.set(this.#hashKey, hashKeyAt);
    memory.fill(0, blocksAt, tagsStart); // (the zero padding)

    const out = new Uint8Array(outBytes);
    const results = new Array<Uint8Array>(items.length);
    let outAt = 0;
    let streamAt = 0;
    for (let i = 0; i < items.length; i++) {
      const { aad, plaintext } = items[i];
      const item = tableAt + i * core.GHASH_ITEM.value;
      const tagAt = tagsStart + i * TAG_BYTES;
      const blocks = blocksOf(aad.length) + blocksOf(plaintext.length) + 1;
      view.setUint32(item, blocksAt, true);
      view.setUint32(item + 4, blocks, true);
      view.setUint32(item + 8, tagAt, true);
      for (let b = 0; b < BLOCK; b++) memory[tagAt + b] = keystream[streamAt + b]; // the tag mask AES(K, J0)
      memory.set(aad, blocksAt);
      const textAt = blocksAt + blocksOf(aad.length) * BLOCK;
      for (let b = 0; b < plaintext.length; b++) {
        const c = plaintext[b] ^ keystream[streamAt + BLOCK + b];
        memory[textAt + b] = c;
        out[outAt + b] = c;
      }
      const lengthsAt = textAt + blocksOf(plaintext.length) * BLOCK;
      // (bit lengths, 64-bit big-endian each: below 2^53, so two 32-bit halves from a double)
      view.setUint32(lengthsAt, Math.floor((aad.length * 8) / 2 ** 32));
      view.setUint32(lengthsAt + 4, (aad.length * 8) >>> 0);
      view.setUint32(lengthsAt + 8, Math.floor((plaintext.length * 8) / 2 ** 32));
      view.setUint32(lengthsAt + 12, (plaintext.length * 8) >>> 0);
      results[i] = out.subarray(outAt, outAt + plaintext.length + TAG_BYTES);
      outAt += plaintext.length + TAG_BYTES;
      streamAt += (1 + blocksOf(plaintext.length)) * BLOCK;
      blocksAt += blocks * BLOCK;
    }
    core.gcmTags(hashKeyAt, tableAt, items.length);
    for (let i = 0; i < items.length; i++) {
      const result = results[i];
      const from = tagsStart + i * TAG_BYTES;
      const to = result.length - TAG_BYTES;
      for (let b = 0; b < TAG_BYTES; b++) result[to + b] = memory[from + b];
    }
    // (the keystream and hash key would let anyone who read them forge or decrypt: gone before returning)
    keystream.fill(0);
    memory.fill(0, hashKeyAt, end);
    return results;
  }
}
