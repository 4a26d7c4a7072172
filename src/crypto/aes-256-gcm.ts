// AES-256-GCM (algorithm 0x02) through node:crypto, behind the same batch interface as the wasm core.
// WebAssembly has no AES instructions and table-based AES leaks through cache timing, so this
// algorithm stays in OpenSSL. It costs several JS/C++ crossings per record; it exists for agility.

import { createCipheriv, createDecipheriv } from 'node:crypto';

import type { BatchAead, OpenItem, SealItem } from './batch-aead.js';
import { TAG_BYTES, checkSealItem, isWellFormedOpenItem } from './batch-aead.js';
import { openEnvelopesWithItems, sealEnvelopesWithItems, type EnvelopeOpenBatch, type EnvelopeSealBatch } from './envelope-batch.js';

const CIPHER = 'aes-256-gcm';

class Aes256GcmBatch implements BatchAead {
  readonly algorithm = 'aes-256-gcm' as const;

  sealBatch(items: readonly SealItem[]): Uint8Array[] {
    let total = 0;
    for (let i = 0; i < items.length; i++) {
      checkSealItem(items[i], i);
      total += (items[i].prefix?.length ?? 0) + items[i].plaintext.length + TAG_BYTES;
    }
    // One output buffer per batch, like the wasm core: results are views of it.
    const out = new Uint8Array(total);
    const results = new Array<Uint8Array>(items.length);
    let offset = 0;
    for (let i = 0; i < items.length; i++) {
      const { key, nonce, aad, plaintext, prefix } = items[i];
      const start = offset;
      if (prefix !== undefined) {
        out.set(prefix, offset);
        offset += prefix.length;
      }
      const cipher = createCipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad);
      const ct = cipher.update(plaintext);
      out.set(ct, offset);
      offset += ct.length;
      const last = cipher.final(); // empty for GCM, kept for completeness
      out.set(last, offset);
      offset += last.length;
      out.set(cipher.getAuthTag(), offset);
      offset += TAG_BYTES;
      results[i] = new Uint8Array(out.buffer, start, offset - start);
    }
    return results;
  }

  openBatch(items: readonly OpenItem[]): (Uint8Array | null)[] {
    const results = new Array<Uint8Array | null>(items.length);
    for (let i = 0; i < items.length; i++) {
      results[i] = isWellFormedOpenItem(items[i], i) ? openOne(items[i]) : null;
    }
    return results;
  }

  sealEnvelopes(batch: EnvelopeSealBatch): Buffer[] {
    return sealEnvelopesWithItems(this, batch);
  }

  openEnvelopes(batch: EnvelopeOpenBatch): (Buffer | null)[] {
    return openEnvelopesWithItems(this, batch);
  }
}

function openOne({ key, nonce, aad, sealed }: OpenItem): Uint8Array | null {
  const ctLength = sealed.length - TAG_BYTES;
  const decipher = createDecipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(ctLength));
  // update() releases plaintext before the tag is checked; it is returned only if final() succeeds.
  const plaintext = decipher.update(sealed.subarray(0, ctLength));
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    return null;
  }
  return plaintext;
}

/** The AES-256-GCM batch cipher (stateless; one shared instance is fine). */
export const aes256Gcm: BatchAead = new Aes256GcmBatch();
