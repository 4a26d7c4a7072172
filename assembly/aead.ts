// ChaCha20-Poly1305 AEAD, RFC 8439 section 2.8.
//
// Poly1305 key = first 32 bytes of ChaCha20 block 0 (the batch makes four items' keys at once with
// chacha20PolyKeys4); the text is encrypted from block 1; the MAC runs over
// aad || pad16 || ciphertext || pad16 || le64(aad length) || le64(ciphertext length). Because of the
// zero padding every Poly1305 block here is a full 16-byte block.
//
// Open verifies the tag before decrypting anything, so a forged item never produces plaintext, not
// even in scratch memory. Secrets left in scratch (Poly1305 state) are wiped before returning.
// `kn` is a key block: 32-byte key then 12-byte nonce.

import { copyShort, zero } from './bytes';
import { chacha20Xor } from './chacha20';
import { HIBIT, POLY1305_STATE, poly1305Blocks, poly1305Finish, poly1305Init } from './poly1305';

const POLY: usize = memory.data(POLY1305_STATE, 16);
// The zero-padded last block of a segment, then the lengths block.
const BLOCK: usize = memory.data(16, 16);
const TAG: usize = memory.data(16, 16);

/** Absorbs len bytes at p, zero-padded to a multiple of 16. */
function macPadded(p: usize, len: usize): void {
  const full = len >> 4;
  if (full > 0) poly1305Blocks(POLY, p, full, HIBIT);
  const rem = len & 15;
  if (rem > 0) {
    zero(BLOCK, 16);
    copyShort(BLOCK, p + (full << 4), rem);
    poly1305Blocks(POLY, BLOCK, 1, HIBIT);
  }
}

/** Tag of aad and ciphertext ct under the one-time key at polyKey, into out. Lengths are public. */
function computeTag(polyKey: usize, aad: usize, aadLen: usize, ct: usize, len: usize, out: usize): void {
  poly1305Init(POLY, polyKey);
  macPadded(aad, aadLen);
  macPadded(ct, len);
  store<u64>(BLOCK, <u64>aadLen);
  store<u64>(BLOCK, <u64>len, 8);
  poly1305Blocks(POLY, BLOCK, 1, HIBIT);
  poly1305Finish(POLY, out);
  zero(POLY, POLY1305_STATE);
}

/** Encrypts len bytes at data in place and writes the 16-byte tag at tag. */
export function aeadSeal(kn: usize, polyKey: usize, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): void {
  chacha20Xor(kn, 1, data, data, len);
  computeTag(polyKey, aad, aadLen, data, len, tag);
}

/** Constant-time equality of two 16-byte tags: no early exit, one data-independent comparison. */
@inline function tagsEqual(a: usize, b: usize): bool {
  const diff = (load<u64>(a) ^ load<u64>(b)) | (load<u64>(a, 8) ^ load<u64>(b, 8));
  return diff == 0;
}

/** Checks the tag at tag; only if it matches, decrypts len bytes at data in place. */
export function aeadOpen(kn: usize, polyKey: usize, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): bool {
  computeTag(polyKey, aad, aadLen, data, len, TAG);
  const ok = tagsEqual(TAG, tag);
  zero(TAG, 16);
  if (ok) chacha20Xor(kn, 1, data, data, len);
  return ok;
}
