// Batch layout: the host writes a whole batch into one arena and makes one call.
//
// Arena (starts at arenaBase(), reused by every batch, grown only when a batch needs more):
//   [ descriptor table: count * DESC_SIZE bytes ][ data written by the host, laid out as it likes ]
// Descriptor (DESC_SIZE = 64 bytes, u32 fields little-endian):
//   0  key (32 bytes)   32 nonce (12 bytes)   44 aad pointer   48 aad length
//   52 text pointer     56 text length        60 status (written here: 0 ok, 1 authentication failed)
// Seal encrypts the text in place and writes the tag right after it (text pointer + length), so the
// host can lay out prefix || text || tag per item, back to back, and copy results out without
// rearranging them. Open reads the tag from the same place and decrypts in place only if it matches.
// Keys and nonces are wiped from the descriptor table once the item is done.

import { zero } from './bytes';
import { aeadOpen, aeadSeal } from './aead';
import { chacha20PolyKeys4 } from './chacha20';

export const DESC_SIZE: u32 = 64;
export const STATUS_OK: u32 = 0;
export const STATUS_FORGED: u32 = 1;

const PAGE: usize = 65536;

/** First byte of the arena: after static data, 64-byte aligned. */
export function arenaBase(): usize {
  return (__heap_base + 63) & ~(<usize>63);
}

/**
 * Makes sure the arena holds `bytes` bytes; grows memory only when the current size is short.
 * Returns the arena base, or 0 when memory cannot grow that far.
 */
export function reserve(bytes: usize): usize {
  const base = arenaBase();
  const end = <u64>base + <u64>bytes;
  const have = <u64>memory.size() * <u64>PAGE;
  if (end > have) {
    const pages = (end - have + <u64>PAGE - 1) / <u64>PAGE;
    if (pages > 65536 || memory.grow(<i32>pages) < 0) return 0;
  }
  return base;
}

// Bytes 0..44 of a descriptor.
@inline function wipeKeyAndNonce(desc: usize): void {
  zero(desc, 32);
  store<u64>(desc, 0, 32);
  store<u32>(desc, 0, 40);
}

// Poly1305 keys of up to four items (64 bytes apart); wiped after each group.
const POLY_KEYS: usize = memory.data(256, 16);

/**
 * Runs `count` items in groups of four: one 4-lane ChaCha20 call makes the group's Poly1305 keys
 * (a single block is latency bound and costs nearly as much as four), then each item is sealed or
 * opened alone. A short last group repeats its last descriptor in the unused lanes.
 */
export function aeadRun(desc: usize, count: u32, open: bool): u32 {
  let forged: u32 = 0;
  for (let i: u32 = 0; i < count; i += 4) {
    const group = min(count - i, 4);
    const d0 = desc + i * DESC_SIZE;
    const last = d0 + (group - 1) * DESC_SIZE;
    chacha20PolyKeys4(d0, min(d0 + DESC_SIZE, last), min(d0 + 2 * DESC_SIZE, last), last, POLY_KEYS);
    for (let j: u32 = 0; j < group; j++) {
      const d = d0 + j * DESC_SIZE;
      const polyKey = POLY_KEYS + (j << 6);
      const text = <usize>load<u32>(d, 52);
      const len = <usize>load<u32>(d, 56);
      const aad = <usize>load<u32>(d, 44);
      const aadLen = <usize>load<u32>(d, 48);
      if (open) {
        const ok = aeadOpen(d, polyKey, aad, aadLen, text, len, text + len);
        store<u32>(d, ok ? STATUS_OK : STATUS_FORGED, 60);
        forged += <u32>!ok;
      } else {
        aeadSeal(d, polyKey, aad, aadLen, text, len, text + len);
        store<u32>(d, STATUS_OK, 60);
      }
      wipeKeyAndNonce(d);
    }
    zero(POLY_KEYS, 256);
  }
  return forged;
}

/** Seals `count` items described at desc. Returns the number of failed items (always 0). */
export function sealBatch(desc: usize, count: u32): u32 {
  return aeadRun(desc, count, false);
}

/** Opens `count` items described at desc, each with its own status. Returns the number of forged items. */
export function openBatch(desc: usize, count: u32): u32 {
  return aeadRun(desc, count, true);
}
