// Raw Poly1305 of the core (scalar limbs, SIMD pairs, partial final blocks) against a BigInt transcription
// of RFC 8439 section 2.5.1, with keys and messages chosen to push limbs to their bounds: the largest
// clamped r, all-ones s and messages, and random ones; lengths across every path switch.

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { type CorePrimitives, loadCorePrimitives } from '../../../src/crypto/core-primitives.js';
import { prng, testSeed, toHex } from './helpers.js';

const P = (1n << 130n) - 5n;

function le(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** RFC 8439 2.5.1, literally. */
function referencePoly1305(key: Uint8Array, msg: Uint8Array): string {
  const r = le(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = le(key.subarray(16, 32));
  let acc = 0n;
  for (let i = 0; i < msg.length; i += 16) {
    const block = msg.subarray(i, i + 16);
    acc = ((acc + le(block) + (1n << BigInt(8 * block.length))) * r) % P;
  }
  const tag = (acc + s) & ((1n << 128n) - 1n);
  return tag.toString(16).padStart(32, '0').match(/../g)!.reverse().join('');
}

describe('Poly1305 against a BigInt reference', () => {
  let primitives: CorePrimitives;

  before(async () => {
    primitives = await loadCorePrimitives();
  });

  it('agrees on extreme and random keys and messages of 0 to 700 bytes', () => {
    const seed = testSeed();
    const next = prng(seed);
    const ones = (n: number) => new Uint8Array(n).fill(0xff);
    const keys = [ones(32), new Uint8Array(32), Uint8Array.from([...ones(16), ...new Uint8Array(16)]), randomBytes(32)];
    const fills = [(n: number) => ones(n), (n: number) => new Uint8Array(n), (n: number) => randomBytes(n)];
    let checked = 0;
    for (let length = 0; length <= 700; length += 1 + next(7)) {
      for (const key of keys) {
        for (const fill of fills) {
          const msg = fill(length);
          expect(toHex(primitives.poly1305(key, msg)), `length ${length}, key ${toHex(key)} (seed ${seed})`)
            .to.equal(referencePoly1305(key, msg));
          checked++;
        }
      }
    }
    expect(checked).to.be.above(1000);
  });
});
