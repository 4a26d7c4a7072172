// Any change to what is authenticated must make open return null: every single-bit flip of the key,
// nonce, aad, ciphertext and tag of a short record, a sample of flips in a long one (whose tag goes
// through the SIMD Poly1305 path), and truncations and extensions. Each set runs as one batch.

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { type CryptoCore, type OpenItem, loadCryptoCore } from '../../../src/crypto/index.js';
import { prng, testSeed } from './helpers.js';

function flipped(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[bit >> 3] ^= 1 << (bit & 7);
  return copy;
}

/** The record with one bit of one field flipped, for the given bits of every field. */
function flips(item: OpenItem, bitsOf: (field: keyof OpenItem, bits: number) => number[]): { what: string; item: OpenItem }[] {
  const out: { what: string; item: OpenItem }[] = [];
  for (const field of ['key', 'nonce', 'aad', 'sealed'] as const) {
    for (const bit of bitsOf(field, item[field].length * 8)) {
      out.push({ what: `${field} bit ${bit}`, item: { ...item, [field]: flipped(item[field], bit) } });
    }
  }
  return out;
}

describe('tampering', () => {
  let core: CryptoCore;

  before(async () => {
    core = await loadCryptoCore();
  });

  function sealOne(plaintextBytes: number, aadBytes: number): OpenItem & { plaintext: Uint8Array } {
    const item = { key: randomBytes(32), nonce: randomBytes(12), aad: randomBytes(aadBytes), plaintext: randomBytes(plaintextBytes) };
    const [sealed] = core.sealBatch([item]);
    return { ...item, sealed };
  }

  it('every single-bit flip of key, nonce, aad, ciphertext or tag of a 45-byte record is refused', () => {
    const record = sealOne(45, 27);
    const all = (_field: keyof OpenItem, bits: number) => Array.from({ length: bits }, (_, i) => i);
    const cases = flips(record, all);
    expect(cases).to.have.length((32 + 12 + 27 + 45 + 16) * 8);
    const results = core.openBatch([record, ...cases.map((c) => c.item)]);
    expect(Buffer.compare(results[0]!, record.plaintext)).to.equal(0);
    cases.forEach((c, i) => expect(results[i + 1], c.what).to.equal(null));
  });

  it('sampled bit flips of a 5000-byte record, and every tag bit, are refused', () => {
    const seed = testSeed();
    const next = prng(seed);
    const record = sealOne(5000, 40);
    const sample = (field: keyof OpenItem, bits: number) =>
      field === 'sealed'
        ? [...Array.from({ length: 300 }, () => next(bits - 128)), ...Array.from({ length: 128 }, (_, i) => bits - 128 + i)]
        : Array.from({ length: 40 }, () => next(bits));
    const cases = flips(record, sample);
    const results = core.openBatch([record, ...cases.map((c) => c.item)]);
    expect(Buffer.compare(results[0]!, record.plaintext)).to.equal(0);
    cases.forEach((c, i) => expect(results[i + 1], `${c.what} (seed ${seed})`).to.equal(null));
  });

  it('truncated, extended, swapped-field and empty records are refused', () => {
    const record = sealOne(100, 10);
    const { sealed } = record;
    const variants: { what: string; item: OpenItem }[] = [
      { what: 'last byte dropped', item: { ...record, sealed: sealed.subarray(0, sealed.length - 1) } },
      { what: 'first byte dropped', item: { ...record, sealed: sealed.subarray(1) } },
      { what: 'zero byte appended', item: { ...record, sealed: Uint8Array.from([...sealed, 0]) } },
      { what: 'tag only', item: { ...record, sealed: sealed.subarray(sealed.length - 16) } },
      { what: 'aad dropped', item: { ...record, aad: new Uint8Array(0) } },
      { what: 'aad moved into the text', item: { ...record, aad: new Uint8Array(0), sealed: Uint8Array.from([...record.aad, ...sealed]) } },
      { what: 'all-zero tag', item: { ...record, sealed: Uint8Array.from([...sealed.subarray(0, 100), ...new Uint8Array(16)]) } },
      { what: '15 bytes', item: { ...record, sealed: sealed.subarray(0, 15) } },
      { what: 'empty', item: { ...record, sealed: new Uint8Array(0) } },
    ];
    const results = core.openBatch(variants.map((v) => v.item));
    variants.forEach((v, i) => expect(results[i], v.what).to.equal(null));
  });
});
