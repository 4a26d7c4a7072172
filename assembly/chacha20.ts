// ChaCha20 stream cipher, RFC 8439 sections 2.3 and 2.4.
//
// Only 32-bit additions, rotations and xors: constant time by construction (no branch or memory
// index depends on a secret). A "key block" `kn` is the 32-byte key followed by the 12-byte nonce, as
// in a batch descriptor; words are read as little-endian u32, which is what wasm loads are.
//
// Two paths:
// - chacha4: four blocks at once, one block per SIMD lane ("vertical" layout: v128 number i holds
//   word i of four blocks). Each lane may have its own key and nonce: the bulk path gives all lanes
//   the same key and counters c..c+3; the batch gives four items' keys and counter 0 to make their
//   four Poly1305 keys in one go.
// - chacha20Block: one block, the four rows of the state in four v128 (the quarter rounds of a
//   round run side by side, lanes rotated for the diagonal round). It is latency bound, so it is only
//   used for tails of at most one block.

import { zero } from './bytes';

// "expand 32-byte k"
const C0: i32 = 0x61707865;
const C1: i32 = 0x3320646e;
const C2: i32 = 0x79622d32;
const C3: i32 = 0x6b206574;

// Keystream of a partial last chunk; wiped after every use.
const TAIL: usize = memory.data(256, 16);
// 256 zero bytes: chacha4 over zeros yields raw keystream without a second code path.
const ZEROS: usize = memory.data(256, 16);

// A rotation by 16 is a byte permutation V8 emits as two word shuffles. Rotations by 12, 8 and 7 are
// two shifts and an or (for 8 too: V8 rebuilds a byte shuffle's mask each time).
@inline function rotl16(x: v128): v128 {
  return i8x16.shuffle(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}
@inline function rotl12(x: v128): v128 {
  return v128.or(i32x4.shl(x, 12), i32x4.shr_u(x, 20));
}
@inline function rotl8(x: v128): v128 {
  return v128.or(i32x4.shl(x, 8), i32x4.shr_u(x, 24));
}
@inline function rotl7(x: v128): v128 {
  return v128.or(i32x4.shl(x, 7), i32x4.shr_u(x, 25));
}
@inline function add(a: v128, b: v128): v128 {
  return i32x4.add(a, b);
}
@inline function xor(a: v128, b: v128): v128 {
  return v128.xor(a, b);
}

/** Writes keystream block `counter` (64 bytes) of key block kn to out. */
export function chacha20Block(kn: usize, counter: u32, out: usize): void {
  const a0 = i32x4(C0, C1, C2, C3);
  const b0 = v128.load(kn);
  const c0 = v128.load(kn, 16);
  const d0 = i32x4.replace_lane(v128.load(kn, 28), 0, <i32>counter); // [counter, nonce]
  let a = a0, b = b0, c = c0, d = d0;
  for (let i = 0; i < 10; i++) {
    // Column round: the four quarter rounds run in the four lanes.
    a = add(a, b); d = rotl16(xor(d, a)); c = add(c, d); b = rotl12(xor(b, c));
    a = add(a, b); d = rotl8(xor(d, a)); c = add(c, d); b = rotl7(xor(b, c));
    // Rotate rows so that diagonals line up as columns, then back.
    b = i32x4.shuffle(b, b, 1, 2, 3, 0);
    c = i32x4.shuffle(c, c, 2, 3, 0, 1);
    d = i32x4.shuffle(d, d, 3, 0, 1, 2);
    a = add(a, b); d = rotl16(xor(d, a)); c = add(c, d); b = rotl12(xor(b, c));
    a = add(a, b); d = rotl8(xor(d, a)); c = add(c, d); b = rotl7(xor(b, c));
    b = i32x4.shuffle(b, b, 3, 0, 1, 2);
    c = i32x4.shuffle(c, c, 2, 3, 0, 1);
    d = i32x4.shuffle(d, d, 1, 2, 3, 0);
  }
  v128.store(out, add(a, a0));
  v128.store(out, add(b, b0), 16);
  v128.store(out, add(c, c0), 32);
  v128.store(out, add(d, d0), 48);
}

// Stores the transposition of four word vectors xored with src: block k gets lane k of w0..w3.
@inline function storeXor4(src: usize, dst: usize, w0: v128, w1: v128, w2: v128, w3: v128): void {
  const t0 = i32x4.shuffle(w0, w1, 0, 4, 1, 5);
  const t1 = i32x4.shuffle(w0, w1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(w2, w3, 0, 4, 1, 5);
  const t3 = i32x4.shuffle(w2, w3, 2, 6, 3, 7);
  v128.store(dst, xor(v128.load(src), i64x2.shuffle(t0, t2, 0, 2)));
  v128.store(dst, xor(v128.load(src, 64), i64x2.shuffle(t0, t2, 1, 3)), 64);
  v128.store(dst, xor(v128.load(src, 128), i64x2.shuffle(t1, t3, 0, 2)), 128);
  v128.store(dst, xor(v128.load(src, 192), i64x2.shuffle(t1, t3, 1, 3)), 192);
}

/**
 * For `chunks` chunks of 256 bytes: dst = src xor four keystream blocks, lane k using key block knk
 * and counter counter + k * step (+ 4 per chunk). Transposes turn the four key blocks into per-word
 * vectors (a splat when all four are the same).
 */
function chacha4(kn0: usize, kn1: usize, kn2: usize, kn3: usize, counter: u32, step: u32,
                 src: usize, dst: usize, chunks: usize): void {
  let r0 = v128.load(kn0), r1 = v128.load(kn1), r2 = v128.load(kn2), r3 = v128.load(kn3);
  let u0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), u1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  let u2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5), u3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  const k0 = i64x2.shuffle(u0, u2, 0, 2), k1 = i64x2.shuffle(u0, u2, 1, 3);
  const k2 = i64x2.shuffle(u1, u3, 0, 2), k3 = i64x2.shuffle(u1, u3, 1, 3);
  r0 = v128.load(kn0, 16); r1 = v128.load(kn1, 16); r2 = v128.load(kn2, 16); r3 = v128.load(kn3, 16);
  u0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5); u1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  u2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5); u3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  const k4 = i64x2.shuffle(u0, u2, 0, 2), k5 = i64x2.shuffle(u0, u2, 1, 3);
  const k6 = i64x2.shuffle(u1, u3, 0, 2), k7 = i64x2.shuffle(u1, u3, 1, 3);
  // Bytes 28..44 of a key block: the last key word and the nonce; only the nonce words are kept.
  r0 = v128.load(kn0, 28); r1 = v128.load(kn1, 28); r2 = v128.load(kn2, 28); r3 = v128.load(kn3, 28);
  u0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5); u1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  u2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5); u3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  const n0 = i64x2.shuffle(u0, u2, 1, 3), n1 = i64x2.shuffle(u1, u3, 0, 2);
  const n2 = i64x2.shuffle(u1, u3, 1, 3);
  let ctr = i32x4.add(i32x4.splat(<i32>counter), i32x4.mul(i32x4.splat(<i32>step), i32x4(0, 1, 2, 3)));

  for (; chunks > 0; chunks--, src += 256, dst += 256, ctr = i32x4.add(ctr, i32x4.splat(4))) {
    let x0 = i32x4.splat(C0), x1 = i32x4.splat(C1), x2 = i32x4.splat(C2), x3 = i32x4.splat(C3);
    let x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7;
    let x12 = ctr, x13 = n0, x14 = n1, x15 = n2;
    for (let i = 0; i < 10; i++) {
      // Column round, the four quarter rounds interleaved step by step for instruction-level parallelism.
      x0 = add(x0, x4); x1 = add(x1, x5); x2 = add(x2, x6); x3 = add(x3, x7);
      x12 = rotl16(xor(x12, x0)); x13 = rotl16(xor(x13, x1)); x14 = rotl16(xor(x14, x2)); x15 = rotl16(xor(x15, x3));
      x8 = add(x8, x12); x9 = add(x9, x13); x10 = add(x10, x14); x11 = add(x11, x15);
      x4 = rotl12(xor(x4, x8)); x5 = rotl12(xor(x5, x9)); x6 = rotl12(xor(x6, x10)); x7 = rotl12(xor(x7, x11));
      x0 = add(x0, x4); x1 = add(x1, x5); x2 = add(x2, x6); x3 = add(x3, x7);
      x12 = rotl8(xor(x12, x0)); x13 = rotl8(xor(x13, x1)); x14 = rotl8(xor(x14, x2)); x15 = rotl8(xor(x15, x3));
      x8 = add(x8, x12); x9 = add(x9, x13); x10 = add(x10, x14); x11 = add(x11, x15);
      x4 = rotl7(xor(x4, x8)); x5 = rotl7(xor(x5, x9)); x6 = rotl7(xor(x6, x10)); x7 = rotl7(xor(x7, x11));
      // Diagonal round: (0,5,10,15) (1,6,11,12) (2,7,8,13) (3,4,9,14).
      x0 = add(x0, x5); x1 = add(x1, x6); x2 = add(x2, x7); x3 = add(x3, x4);
      x15 = rotl16(xor(x15, x0)); x12 = rotl16(xor(x12, x1)); x13 = rotl16(xor(x13, x2)); x14 = rotl16(xor(x14, x3));
      x10 = add(x10, x15); x11 = add(x11, x12); x8 = add(x8, x13); x9 = add(x9, x14);
      x5 = rotl12(xor(x5, x10)); x6 = rotl12(xor(x6, x11)); x7 = rotl12(xor(x7, x8)); x4 = rotl12(xor(x4, x9));
      x0 = add(x0, x5); x1 = add(x1, x6); x2 = add(x2, x7); x3 = add(x3, x4);
      x15 = rotl8(xor(x15, x0)); x12 = rotl8(xor(x12, x1)); x13 = rotl8(xor(x13, x2)); x14 = rotl8(xor(x14, x3));
      x10 = add(x10, x15); x11 = add(x11, x12); x8 = add(x8, x13); x9 = add(x9, x14);
      x5 = rotl7(xor(x5, x10)); x6 = rotl7(xor(x6, x11)); x7 = rotl7(xor(x7, x8)); x4 = rotl7(xor(x4, x9));
    }
    storeXor4(src, dst,
      add(x0, i32x4.splat(C0)), add(x1, i32x4.splat(C1)), add(x2, i32x4.splat(C2)), add(x3, i32x4.splat(C3)));
    storeXor4(src + 16, dst + 16, add(x4, k0), add(x5, k1), add(x6, k2), add(x7, k3));
    storeXor4(src + 32, dst + 32, add(x8, k4), add(x9, k5), add(x10, k6), add(x11, k7));
    storeXor4(src + 48, dst + 48, add(x12, ctr), add(x13, n0), add(x14, n1), add(x15, n2));
  }
}

/**
 * Block 0 of four key blocks at once: the 64-byte keystream block of lane k goes to out + 64k, its
 * first 32 bytes being that item's Poly1305 key (RFC 8439 2.6). The caller wipes out.
 */
export function chacha20PolyKeys4(kn0: usize, kn1: usize, kn2: usize, kn3: usize, out: usize): void {
  chacha4(kn0, kn1, kn2, kn3, 0, 0, ZEROS, out, 1);
}

// dst[i] = src[i] ^ ks[i] for i < len (len < 256); 16 bytes at a time, then bytes.
function xorInto(src: usize, dst: usize, ks: usize, len: usize): void {
  let i: usize = 0;
  for (; i + 16 <= len; i += 16) {
    v128.store(dst + i, xor(v128.load(src + i), v128.load(ks + i)));
  }
  for (; i < len; i++) {
    store<u8>(dst + i, load<u8>(src + i) ^ load<u8>(ks + i));
  }
}

/**
 * dst = src xor keystream of key block kn from block `counter` on (src may equal dst).
 * The 32-bit counter must not wrap: callers keep len below 2^32 bytes, far under 256 GiB.
 */
export function chacha20Xor(kn: usize, counter: u32, src: usize, dst: usize, len: usize): void {
  const chunks = len >> 8;
  if (chunks > 0) chacha4(kn, kn, kn, kn, counter, 1, src, dst, chunks);
  const done = chunks << 8;
  const rest = len - done;
  if (rest == 0) return;
  counter += <u32>(chunks << 2);
  // One block is cheaper alone; more are cheaper as four lanes.
  if (rest <= 64) chacha20Block(kn, counter, TAIL);
  else chacha4(kn, kn, kn, kn, counter, 1, ZEROS, TAIL, 1);
  xorInto(src + done, dst + done, TAIL, rest);
  zero(TAIL, 256);
}
