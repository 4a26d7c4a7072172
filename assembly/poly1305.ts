// Poly1305 one-time authenticator, RFC 8439 section 2.5.
//
// WebAssembly has no 64x64->128-bit multiply, so the 130-bit accumulator uses five 26-bit limbs and
// every product fits an i64 (poly1305-donna-32). Limb products above 2^130 wrap around as *5 because
// 2^130 = 5 (mod p), hence the precomputed s_i = 5 * r_i. Reduction uses masks and shifts only: no
// branch or memory index depends on the key, the message or the accumulator.
//
// Long runs of full blocks go two at a time through SIMD (blocks2): lane A takes the odd blocks,
// lane B the even ones, both multiplied by r^2 per step and the last step by (r^2, r), then the lanes
// are added: the same Horner polynomial, with i64x2.extmul doing two 26x26-bit products at once.
//
// State at a caller-provided area of POLY1305_STATE bytes `st`:
//   0 r limbs (5 x u32) | 20 s1..s4 | 36 h limbs | 56 pad (key bytes 16..31) | 72 powers-ready flag
//   80 r^2 vectors for blocks2 | 224 (r^2, r) vectors for its last step

import { copyShort, zero } from './bytes';

const MASK: u64 = 0x3ffffff;

export const POLY1305_STATE: i32 = 368;
const SQ: usize = 80;
const MIX: usize = 224;
/** Below this many blocks the r^2 set-up of the SIMD path costs more than it saves. */
const SIMD_MIN_BLOCKS: usize = 8;

/** Bit 2^128 of a full 16-byte block, as seen in limb 4 (2^104 * 2^24). */
export const HIBIT: u32 = 1 << 24;

/** Clamps r and stores r, 5r, zero h and the pad (RFC 8439 2.5: key = r || s). */
export function poly1305Init(st: usize, key: usize): void {
  const r0 = load<u32>(key, 0) & 0x3ffffff;
  const r1 = (load<u32>(key, 3) >> 2) & 0x3ffff03;
  const r2 = (load<u32>(key, 6) >> 4) & 0x3ffc0ff;
  const r3 = (load<u32>(key, 9) >> 6) & 0x3f03fff;
  const r4 = (load<u32>(key, 12) >> 8) & 0x00fffff;
  store<u32>(st, r0, 0);
  store<u32>(st, r1, 4);
  store<u32>(st, r2, 8);
  store<u32>(st, r3, 12);
  store<u32>(st, r4, 16);
  store<u32>(st, r1 * 5, 20);
  store<u32>(st, r2 * 5, 24);
  store<u32>(st, r3 * 5, 28);
  store<u32>(st, r4 * 5, 32);
  store<u64>(st, 0, 36);
  store<u64>(st, 0, 44);
  store<u32>(st, 0, 52);
  store<u32>(st, 0, 72);
  store<u64>(st, load<u64>(key, 16), 56);
  store<u64>(st, load<u64>(key, 24), 64);
}

/**
 * Absorbs `blocks` 16-byte blocks at m. hibit is HIBIT for full blocks, 0 for the final padded
 * partial block of raw Poly1305 (which appends its own 0x01 byte).
 */
export function poly1305Blocks(st: usize, m: usize, blocks: usize, hibit: u32): void {
  if (blocks >= SIMD_MIN_BLOCKS && hibit == HIBIT) {
    const pairs = blocks >> 1;
    blocks2(st, m, pairs);
    m += pairs << 5;
    blocks &= 1;
    if (blocks == 0) return;
  }
  const r0 = <u64>load<u32>(st, 0), r1 = <u64>load<u32>(st, 4), r2 = <u64>load<u32>(st, 8);
  const r3 = <u64>load<u32>(st, 12), r4 = <u64>load<u32>(st, 16);
  const s1 = <u64>load<u32>(st, 20), s2 = <u64>load<u32>(st, 24);
  const s3 = <u64>load<u32>(st, 28), s4 = <u64>load<u32>(st, 32);
  const hi = <u64>hibit;
  let h0 = <u64>load<u32>(st, 36), h1 = <u64>load<u32>(st, 40), h2 = <u64>load<u32>(st, 44);
  let h3 = <u64>load<u32>(st, 48), h4 = <u64>load<u32>(st, 52);
  for (; blocks > 0; blocks--, m += 16) {
    // h += m: the block's 128 bits split into 26-bit limbs by unaligned little-endian loads.
    h0 += <u64>load<u32>(m, 0) & MASK;
    h1 += (<u64>load<u32>(m, 3) >> 2) & MASK;
    h2 += (<u64>load<u32>(m, 6) >> 4) & MASK;
    h3 += (<u64>load<u32>(m, 9) >> 6) & MASK;
    h4 += (<u64>load<u32>(m, 12) >> 8) | hi;
    // h *= r (mod 2^130 - 5). Every term is below 2^27 * 2^29, five of them below 2^62.
    const d0 = h0 * r0 + h1 * s4 + h2 * s3 + h3 * s2 + h4 * s1;
    let d1 = h0 * r1 + h1 * r0 + h2 * s4 + h3 * s3 + h4 * s2;
    let d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s4 + h4 * s3;
    let d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s4;
    let d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0;
    // Partial carry back to ~26-bit limbs (h0 and h1 may keep a small excess; the next products allow it).
    d1 += d0 >> 26; h0 = d0 & MASK;
    d2 += d1 >> 26; h1 = d1 & MASK;
    d3 += d2 >> 26; h2 = d2 & MASK;
    d4 += d3 >> 26; h3 = d3 & MASK;
    h0 += (d4 >> 26) * 5; h4 = d4 & MASK;
    h1 += h0 >> 26; h0 &= MASK;
  }
  store<u32>(st, <u32>h0, 36);
  store<u32>(st, <u32>h1, 40);
  store<u32>(st, <u32>h2, 44);
  store<u32>(st, <u32>h3, 48);
  store<u32>(st, <u32>h4, 52);
}

// Stores r^2 and 5 r^2 splatted (SQ), and lanes (r^2, r) (MIX), as the i32 lanes 0 and 1 read by extmul_low.
function powers(st: usize): void {
  const r0 = <u64>load<u32>(st, 0), r1 = <u64>load<u32>(st, 4), r2 = <u64>load<u32>(st, 8);
  const r3 = <u64>load<u32>(st, 12), r4 = <u64>load<u32>(st, 16);
  const s1 = <u64>load<u32>(st, 20), s2 = <u64>load<u32>(st, 24);
  const s3 = <u64>load<u32>(st, 28), s4 = <u64>load<u32>(st, 32);
  const d0 = r0 * r0 + r1 * s4 + r2 * s3 + r3 * s2 + r4 * s1;
  let d1 = r0 * r1 + r1 * r0 + r2 * s4 + r3 * s3 + r4 * s2;
  let d2 = r0 * r2 + r1 * r1 + r2 * r0 + r3 * s4 + r4 * s3;
  let d3 = r0 * r3 + r1 * r2 + r2 * r1 + r3 * r0 + r4 * s4;
  let d4 = r0 * r4 + r1 * r3 + r2 * r2 + r3 * r1 + r4 * r0;
  d1 += d0 >> 26; let q0 = <u32>(d0 & MASK);
  d2 += d1 >> 26; const q1 = <u32>(d1 & MASK);
  d3 += d2 >> 26; const q2 = <u32>(d2 & MASK);
  d4 += d3 >> 26; const q3 = <u32>(d3 & MASK);
  q0 += <u32>(d4 >> 26) * 5; const q4 = <u32>(d4 & MASK);
  const q1c = q1 + (q0 >> 26);
  q0 &= 0x3ffffff;
  storePower(st, 0, q0, <u32>r0, 0);
  storePower(st, 1, q1c, <u32>r1, <u32>s1);
  storePower(st, 2, q2, <u32>r2, <u32>s2);
  storePower(st, 3, q3, <u32>r3, <u32>s3);
  storePower(st, 4, q4, <u32>r4, <u32>s4);
  store<u32>(st, 1, 72);
}

// Limb i of r^2 (q) and of r, and their 5x multiples (unused for limb 0).
@inline function storePower(st: usize, i: usize, q: u32, r: u32, s: u32): void {
  const at = i << 4;
  v128.store(st + SQ + at, i32x4.splat(q));
  v128.store(st + MIX + at, i32x4(q, r, q, r));
  if (i > 0) {
    const q5 = q * 5;
    v128.store(st + SQ + 64 + at, i32x4.splat(q5));
    v128.store(st + MIX + 64 + at, i32x4(q5, s, q5, s));
  }
}

@inline function mul(h: v128, r: v128): v128 {
  return i64x2.extmul_low_i32x4_u(h, r);
}
@inline function add64(a: v128, b: v128): v128 {
  return i64x2.add(a, b);
}
// The low 32 bits of both i64 lanes into i32 lanes 0 and 1.
@inline function pack(h: v128): v128 {
  return i32x4.shuffle(h, h, 0, 2, 0, 2);
}

// Absorbs 2 * pairs full blocks, two per step (see the top of the file).
function blocks2(st: usize, m: usize, pairs: usize): void {
  if (load<u32>(st, 72) == 0) powers(st);
  const mask = i64x2.splat(0x3ffffff);
  const hibit = i64x2.splat(1 << 24);
  // Lane A continues the accumulator, lane B starts from zero.
  let h0 = i64x2(load<u32>(st, 36), 0), h1 = i64x2(load<u32>(st, 40), 0), h2 = i64x2(load<u32>(st, 44), 0);
  let h3 = i64x2(load<u32>(st, 48), 0), h4 = i64x2(load<u32>(st, 52), 0);
  for (; pairs > 0; pairs--, m += 32) {
    // The low and high 64 bits of both blocks, split into 26-bit limbs.
    const a = v128.load(m), b = v128.load(m, 16);
    const lo = i64x2.shuffle(a, b, 0, 2), hi = i64x2.shuffle(a, b, 1, 3);
    const p0 = pack(add64(h0, v128.and(lo, mask)));
    const p1 = pack(add64(h1, v128.and(i64x2.shr_u(lo, 26), mask)));
    const p2 = pack(add64(h2, v128.and(v128.or(i64x2.shr_u(lo, 52), i64x2.shl(hi, 12)), mask)));
    const p3 = pack(add64(h3, v128.and(i64x2.shr_u(hi, 14), mask)));
    const p4 = pack(add64(h4, v128.or(i64x2.shr_u(hi, 40), hibit)));
    // (h + m) * r^2, or * (r^2, r) on the last step. Terms below 2^56, sums below 2^59.
    const r = st + (pairs == 1 ? MIX : SQ);
    const r0 = v128.load(r), r1 = v128.load(r, 16), r2 = v128.load(r, 32);
    const r3 = v128.load(r, 48), r4 = v128.load(r, 64);
    const s1 = v128.load(r, 80), s2 = v128.load(r, 96), s3 = v128.load(r, 112), s4 = v128.load(r, 128);
    let d0 = add64(add64(add64(add64(mul(p0, r0), mul(p1, s4)), mul(p2, s3)), mul(p3, s2)), mul(p4, s1));
    let d1 = add64(add64(add64(add64(mul(p0, r1), mul(p1, r0)), mul(p2, s4)), mul(p3, s3)), mul(p4, s2));
    let d2 = add64(add64(add64(add64(mul(p0, r2), mul(p1, r1)), mul(p2, r0)), mul(p3, s4)), mul(p4, s3));
    let d3 = add64(add64(add64(add64(mul(p0, r3), mul(p1, r2)), mul(p2, r1)), mul(p3, r0)), mul(p4, s4));
    let d4 = add64(add64(add64(add64(mul(p0, r4), mul(p1, r3)), mul(p2, r2)), mul(p3, r1)), mul(p4, r0));
    // Carry in two interleaved chains (0->1->2->3->4 and 3->4->0->1): shorter latency than one chain.
    // Afterwards every limb is below 2^26 + 2^10, as the next step's 32-bit lanes require.
    let c = i64x2.shr_u(d0, 26), e = i64x2.shr_u(d3, 26);
    d0 = v128.and(d0, mask); d1 = add64(d1, c); d3 = v128.and(d3, mask); d4 = add64(d4, e);
    c = i64x2.shr_u(d1, 26); e = i64x2.shr_u(d4, 26);
    d1 = v128.and(d1, mask); d2 = add64(d2, c); d4 = v128.and(d4, mask);
    d0 = add64(d0, add64(e, i64x2.shl(e, 2)));
    c = i64x2.shr_u(d2, 26); e = i64x2.shr_u(d0, 26);
    d2 = v128.and(d2, mask); d3 = add64(d3, c); d0 = v128.and(d0, mask); d1 = add64(d1, e);
    c = i64x2.shr_u(d3, 26);
    d3 = v128.and(d3, mask); d4 = add64(d4, c);
    h0 = d0; h1 = d1; h2 = d2; h3 = d3; h4 = d4;
  }
  // h = A + B; limbs below 2^28, which the scalar path and poly1305Finish accept.
  store<u32>(st, <u32>(i64x2.extract_lane(h0, 0) + i64x2.extract_lane(h0, 1)), 36);
  store<u32>(st, <u32>(i64x2.extract_lane(h1, 0) + i64x2.extract_lane(h1, 1)), 40);
  store<u32>(st, <u32>(i64x2.extract_lane(h2, 0) + i64x2.extract_lane(h2, 1)), 44);
  store<u32>(st, <u32>(i64x2.extract_lane(h3, 0) + i64x2.extract_lane(h3, 1)), 48);
  store<u32>(st, <u32>(i64x2.extract_lane(h4, 0) + i64x2.extract_lane(h4, 1)), 52);
}

/** Writes the 16-byte tag (h mod p) + pad mod 2^128 to mac. */
export function poly1305Finish(st: usize, mac: usize): void {
  let h0 = load<u32>(st, 36), h1 = load<u32>(st, 40), h2 = load<u32>(st, 44);
  let h3 = load<u32>(st, 48), h4 = load<u32>(st, 52);
  const m: u32 = 0x3ffffff;
  // Full carry. Limbs come in below 2^28; after one round h1 can still be exactly 2^26, so carry up
  // to h4 once more. h4 may then reach 2^26 (h >= 2^130 > p), which the subtraction below handles.
  h1 += h0 >> 26; h0 &= m;
  h2 += h1 >> 26; h1 &= m;
  h3 += h2 >> 26; h2 &= m;
  h4 += h3 >> 26; h3 &= m;
  h0 += (h4 >> 26) * 5; h4 &= m;
  h1 += h0 >> 26; h0 &= m;
  h2 += h1 >> 26; h1 &= m;
  h3 += h2 >> 26; h2 &= m;
  h4 += h3 >> 26; h3 &= m;
  // g = h + 5 - 2^130 (h < 2p here); if it does not borrow then h >= p and g is the reduced value.
  let g0 = h0 + 5;
  let g1 = h1 + (g0 >> 26); g0 &= m;
  let g2 = h2 + (g1 >> 26); g1 &= m;
  let g3 = h3 + (g2 >> 26); g2 &= m;
  let g4 = h4 + (g3 >> 26) - (1 << 26); g3 &= m;
  // Select without a branch: sel is all ones when g did not borrow (top bit clear).
  const sel = (g4 >> 31) - 1;
  const keep = ~sel;
  h0 = (h0 & keep) | (g0 & sel);
  h1 = (h1 & keep) | (g1 & sel);
  h2 = (h2 & keep) | (g2 & sel);
  h3 = (h3 & keep) | (g3 & sel);
  h4 = (h4 & keep) | (g4 & sel);
  // Repack into four 32-bit words (mod 2^128) and add the pad with carries.
  const w0 = h0 | (h1 << 26);
  const w1 = (h1 >> 6) | (h2 << 20);
  const w2 = (h2 >> 12) | (h3 << 14);
  const w3 = (h3 >> 18) | (h4 << 8);
  let f = <u64>w0 + <u64>load<u32>(st, 56);
  store<u32>(mac, <u32>f, 0);
  f = <u64>w1 + <u64>load<u32>(st, 60) + (f >> 32);
  store<u32>(mac, <u32>f, 4);
  f = <u64>w2 + <u64>load<u32>(st, 64) + (f >> 32);
  store<u32>(mac, <u32>f, 8);
  f = <u64>w3 + <u64>load<u32>(st, 68) + (f >> 32);
  store<u32>(mac, <u32>f, 12);
}

// Final partial block of raw Poly1305: the bytes, a 0x01, zeros.
const LAST: usize = memory.data(16, 16);

/** One-shot Poly1305 of any length (RFC 8439 2.5.2, test vectors); the AEAD uses the blocks above. */
export function poly1305Mac(st: usize, key: usize, msg: usize, len: usize, mac: usize): void {
  poly1305Init(st, key);
  const full = len >> 4;
  if (full > 0) poly1305Blocks(st, msg, full, HIBIT);
  const rem = len & 15;
  if (rem > 0) {
    zero(LAST, 16);
    copyShort(LAST, msg + (full << 4), rem);
    store<u8>(LAST + rem, 1);
    poly1305Blocks(st, LAST, 1, 0);
  }
  poly1305Finish(st, mac);
  zero(st, POLY1305_STATE);
}
