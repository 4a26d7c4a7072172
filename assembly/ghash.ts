// GHASH (NIST SP 800-38D, section 6.4), the authenticator of AES-GCM, for the host's batch AES-GCM
// (src/crypto/aes-gcm-batch.ts): OpenSSL makes every AES block of a batch in one call, this makes
// every tag in one call.
//
// Constant time: no table lookups and no branches on secret data. The carry-less 64x64 multiply is
// integer multiplication with "holes" (every fourth bit kept, so carries never reach a kept bit),
// as in BearSSL's ghash_ctmul64 (Thomas Pornin); i64.mul is constant time on the CPUs Node.js runs on.
// The GF(2^128) product takes three such multiplies of the bits as they are and three of the bits
// reversed (Karatsuba), for the high and low halves, then reduces modulo x^128 + x^7 + x^2 + x + 1.

/** Carry-less product of x and y, low 64 bits (see above). */
@inline function bmul64(x: u64, y: u64): u64 {
  const x0 = x & 0x1111111111111111;
  const x1 = x & 0x2222222222222222;
  const x2 = x & 0x4444444444444444;
  const x3 = x & 0x8888888888888888;
  const y0 = y & 0x1111111111111111;
  const y1 = y & 0x2222222222222222;
  const y2 = y & 0x4444444444444444;
  const y3 = y & 0x8888888888888888;
  let z0 = (x0 * y0) ^ (x1 * y3) ^ (x2 * y2) ^ (x3 * y1);
  let z1 = (x0 * y1) ^ (x1 * y0) ^ (x2 * y3) ^ (x3 * y2);
  let z2 = (x0 * y2) ^ (x1 * y1) ^ (x2 * y0) ^ (x3 * y3);
  let z3 = (x0 * y3) ^ (x1 * y2) ^ (x2 * y1) ^ (x3 * y0);
  z0 &= 0x1111111111111111;
  z1 &= 0x2222222222222222;
  z2 &= 0x4444444444444444;
  z3 &= 0x8888888888888888;
  return z0 | z1 | z2 | z3;
}

/** The 64 bits of x in reverse order. */
@inline function rev64(x: u64): u64 {
  x = ((x & 0x5555555555555555) << 1) | ((x >> 1) & 0x5555555555555555);
  x = ((x & 0x3333333333333333) << 2) | ((x >> 2) & 0x3333333333333333);
  x = ((x & 0x0f0f0f0f0f0f0f0f) << 4) | ((x >> 4) & 0x0f0f0f0f0f0f0f0f);
  x = ((x & 0x00ff00ff00ff00ff) << 8) | ((x >> 8) & 0x00ff00ff00ff00ff);
  x = ((x & 0x0000ffff0000ffff) << 16) | ((x >> 16) & 0x0000ffff0000ffff);
  return (x << 32) | (x >> 32);
}

@inline function load64be(p: usize): u64 {
  return bswap<u64>(load<u64>(p));
}

@inline function store64be(p: usize, x: u64): void {
  store<u64>(p, bswap<u64>(x));
}

/**
 * GHASH under the hash key at h (16 bytes) of `blocks` 16-byte blocks at data, from a zero state;
 * the result is XORed into the 16 bytes at out (the caller puts the tag mask E(K, J0) there, so out
 * becomes the tag).
 */
function ghashInto(h: usize, data: usize, blocks: usize, out: usize): void {
  const h1 = load64be(h);
  const h0 = load64be(h + 8);
  const h0r = rev64(h0);
  const h1r = rev64(h1);
  const h2 = h0 ^ h1;
  const h2r = h0r ^ h1r;
  let y1: u64 = 0;
  let y0: u64 = 0;
  for (let b: usize = 0; b < blocks; b++) {
    const p = data + (b << 4);
    y1 ^= load64be(p);
    y0 ^= load64be(p + 8);
    const y0r = rev64(y0);
    const y1r = rev64(y1);
    const y2 = y0 ^ y1;
    const y2r = y0r ^ y1r;
    const z0 = bmul64(y0, h0);
    const z1 = bmul64(y1, h1);
    let z2 = bmul64(y2, h2);
    let z0h = bmul64(y0r, h0r);
    let z1h = bmul64(y1r, h1r);
    let z2h = bmul64(y2r, h2r);
    z2 ^= z0 ^ z1;
    z2h ^= z0h ^ z1h;
    z0h = rev64(z0h) >> 1;
    z1h = rev64(z1h) >> 1;
    z2h = rev64(z2h) >> 1;
    let v0 = z0;
    let v1 = z0h ^ z2;
    let v2 = z1 ^ z2h;
    let v3 = z1h;
    // (GCM's bit order: shift the 256-bit product left by one, then reduce)
    v3 = (v3 << 1) | (v2 >> 63);
    v2 = (v2 << 1) | (v1 >> 63);
    v1 = (v1 << 1) | (v0 >> 63);
    v0 = v0 << 1;
    v2 ^= v0 ^ (v0 >> 1) ^ (v0 >> 2) ^ (v0 >> 7);
    v1 ^= (v0 << 63) ^ (v0 << 62) ^ (v0 << 57);
    v3 ^= v1 ^ (v1 >> 1) ^ (v1 >> 2) ^ (v1 >> 7);
    v2 ^= (v1 << 63) ^ (v1 << 62) ^ (v1 << 57);
    y0 = v2;
    y1 = v3;
  }
  store64be(out, load64be(out) ^ y1);
  store64be(out + 8, load64be(out + 8) ^ y0);
}

/** Bytes of one entry of gcmTags' table: three u32, the input's offset and block count and the tag's offset. */
export const GHASH_ITEM: u32 = 12;

/**
 * For each of `count` items in the table at items (see GHASH_ITEM; offsets are pointers into this
 * memory), XORs GHASH under the hash key at h of the item's blocks into its 16 bytes at the tag's
 * offset. The host lays each item's blocks out as GCM hashes them: the associated data zero-padded to
 * a multiple of 16 bytes, the ciphertext likewise, then the lengths block.
 */
export function gcmTags(h: usize, items: usize, count: u32): void {
  for (let i: u32 = 0; i < count; i++) {
    const entry = items + <usize>i * GHASH_ITEM;
    ghashInto(h, <usize>load<u32>(entry), <usize>load<u32>(entry, 4), <usize>load<u32>(entry, 8));
  }
}
