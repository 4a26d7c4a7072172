// The local provider: a master key held in this process (SHREDDER_MASTER_KEY, SHREDDER_MASTER_KEYS or
// their files), used through node:crypto's AES-256-GCM, and for a batch of new keys through one pass of
// AES blocks and tags (crypto/aes-gcm-batch.ts).
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { AesGcmBatchSealer, type GcmSealItem } from '../crypto/aes-gcm-batch.js';
import type { MasterKeyCipher } from './master-key-cipher.js';

export const MASTER_KEY_BYTES = 32;
const TAG_BYTES = 16;

export class LocalMasterKey implements MasterKeyCipher {
  readonly provider = 'local';
  readonly #key: Buffer;

  constructor(key: Uint8Array, readonly id: number) {
    if (key.length !== MASTER_KEY_BYTES) throw new RangeError(`the master key must be ${MASTER_KEY_BYTES} bytes, got ${key.length}`);
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError('the master key id must be a uint32');
    this.#key = Buffer.from(key);
  }

  #batch: AesGcmBatchSealer | undefined;

  /** Every item in one pass (see crypto/aes-gcm-batch.ts): the same bytes as seal() of each. */
  sealAll(items: readonly GcmSealItem[]): Uint8Array[] {
    for (const item of items) {
      if (item.plaintext.length !== 32) throw new RangeError(`a data key is 32 bytes, got ${item.plaintext.length}`);
    }
    return (this.#batch ??= new AesGcmBatchSealer(this.#key)).seal(items);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, dataKey: Uint8Array): Uint8Array {
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const ciphertext = cipher.update(dataKey);
    cipher.final();
    return Buffer.concat([ciphertext, cipher.getAuthTag()]);
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const key = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    decipher.final(); // authenticates: throws on a forged tag, another subject, or another master key
    return new Uint8Array(key);
  }
}
