// Shared by the crypto unit tests: data files, hex, a reference AEAD from node:crypto, a seeded PRNG.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from '../../../src/crypto/wasm-module.js';

/** Parses a JSON file under test/vectors (tests run from dist/, so the path starts at the package root). */
export function readVectors<T>(relative: string): T {
  return JSON.parse(readFileSync(join(packageRoot(import.meta.url), 'test', 'vectors', relative), 'utf8')) as T;
}

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** Independent implementation (OpenSSL) of the same AEADs: ciphertext || tag. */
export type ReferenceCipher = 'chacha20-poly1305' | 'aes-256-gcm';

export function referenceSeal(
  cipher: ReferenceCipher, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array,
): Uint8Array {
  const c = createCipheriv(cipher as 'aes-256-gcm', key, nonce, { authTagLength: 16 }); // one literal picks the AEAD overload
  c.setAAD(aad);
  return concat(c.update(plaintext), c.final(), c.getAuthTag());
}

/** The plaintext, or null when node:crypto refuses the tag. */
export function referenceOpen(
  cipher: ReferenceCipher, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array,
): Uint8Array | null {
  const d = createDecipheriv(cipher as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const out = d.update(sealed.subarray(0, sealed.length - 16));
  try {
    d.final();
  } catch {
    return null;
  }
  return new Uint8Array(out);
}

/** xorshift32: reproducible sizes and bit positions; the seed goes into failure messages. */
export function prng(seed: number): (below: number) => number {
  let x = seed >>> 0 || 1;
  return (below) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % below;
  };
}

/** A seed from TEST_SEED, or a fresh one; printed by the tests that use it. */
export function testSeed(): number {
  return process.env.TEST_SEED ? Number(process.env.TEST_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
}
