// Envelope batches: items whose output is header || ciphertext || tag, where the header is the item's
// key prefix (e.g. version, algorithm, key id) followed by its nonce, and also begins the item's
// associated data. The module fills in each descriptor's key and nonce and each header itself, so the
// host writes only pointers, a key index and the text per item (its byte copies cost more than the
// cipher for small records).
//
// Key table (KEY_ENTRY bytes per distinct key of the batch): 0 key (32 bytes), 32 key prefix.
// On input a descriptor (see batch.ts) holds, instead of key and nonce, the item's key index (u32 at
// 0); its aad and text pointers are as in batch.ts, the text pointer being where the ciphertext
// starts (the header lies just before it).

import { aeadRun } from './batch';
import { copyBytes } from './bytes';

export const KEY_ENTRY: u32 = 64;
const DESC_SIZE: usize = 64;
const NONCE: usize = 12;

@inline function copyKey(d: usize, entry: usize): void {
  v128.store(d, v128.load(entry));
  v128.store(d, v128.load(entry, 16), 16);
}

@inline function copyNonce(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u32>(dst, load<u32>(src, 8), 8);
}

/**
 * Seals `count` envelopes. Item i's nonce is the 12 bytes at nonces + 12 i (fresh from the host's
 * CSPRNG); its header, prefixBytes of its key's prefix then that nonce, is written at the start of
 * its associated data and just before its text. Returns 0.
 */
export function sealEnvelopes(desc: usize, count: u32, keys: usize, nonces: usize, prefixBytes: usize): u32 {
  const headerBytes = prefixBytes + NONCE;
  for (let i: u32 = 0, d = desc; i < count; i++, d += DESC_SIZE) {
    const entry = keys + <usize>load<u32>(d) * KEY_ENTRY;
    const nonce = nonces + <usize>i * NONCE;
    const aad = <usize>load<u32>(d, 44);
    const header = <usize>load<u32>(d, 52) - headerBytes;
    copyKey(d, entry);
    copyNonce(d + 32, nonce);
    copyBytes(aad, entry + 32, prefixBytes);
    copyNonce(aad + prefixBytes, nonce);
    copyBytes(header, aad, headerBytes);
  }
  return aeadRun(desc, count, false);
}

/**
 * Opens `count` envelopes: each item's nonce is read from its header (just before its text), and the
 * header is copied to the start of its associated data, so the header is always authenticated.
 * Returns the number of forged items (each item's status is in its descriptor).
 */
export function openEnvelopes(desc: usize, count: u32, keys: usize, prefixBytes: usize): u32 {
  const headerBytes = prefixBytes + NONCE;
  for (let i: u32 = 0, d = desc; i < count; i++, d += DESC_SIZE) {
    const entry = keys + <usize>load<u32>(d) * KEY_ENTRY;
    const aad = <usize>load<u32>(d, 44);
    const header = <usize>load<u32>(d, 52) - headerBytes;
    copyKey(d, entry);
    copyNonce(d + 32, header + prefixBytes);
    copyBytes(aad, header, headerBytes);
  }
  return aeadRun(desc, count, true);
}
