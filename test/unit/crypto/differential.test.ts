// Differential tests against OpenSSL (node:crypto): thousands of random cases, biased to small records
// (where per-record overheads and tail handling live) with some up to 64 KiB, sealed by the core and
// opened by node:crypto, and the other way round. Sizes come from a seeded PRNG (TEST_SEED to replay).

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { type CryptoCore, type SealItem, loadCryptoCore } from '../../../src/crypto/index.js';
import { prng, referenceOpen, referenceSeal, testSeed } from './helpers.js';

const CASES = 3000;
const BATCH = 250;
// Every path boundary: Poly1305 block (16), SIMD pair threshold, ChaCha20 block (64) and 4-block chunk (256).
const EDGES = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025];

function randomCases(next: (below: number) => number, count: number): SealItem[] {
  const items: SealItem[] = [];
  for (let i = 0; i < count; i++) {
    const roll = next(100);
    const size = i < EDGES.length ? EDGES[i]
      : roll < 70 ? next(300)
        : roll < 92 ? next(4097)
          : next(65537);
    const aadSize = next(4) === 0 ? 0 : next(80);
    items.push({ key: randomBytes(32), nonce: randomBytes(12), aad: randomBytes(aadSize), plaintext: randomBytes(size) });
  }
  return items;
}

describe('ChaCha20-Poly1305 against node:crypto', function () {
  this.timeout(60_000);
  const seed = testSeed();
  let core: CryptoCore;

  before(async () => {
    core = await loadCryptoCore();
  });

  it(`core seals, node:crypto opens (${CASES} cases, seed ${seed})`, () => {
    const next = prng(seed);
    const items = randomCases(next, CASES);
    let checked = 0;
    for (let start = 0; start < items.length; start += BATCH) {
      const batch = items.slice(start, start + BATCH);
      const sealed = core.sealBatch(batch);
      batch.forEach((item, i) => {
        const what = `case ${start + i}: ${item.plaintext.length} bytes, aad ${item.aad.length} (seed ${seed})`;
        expect(sealed[i].length, what).to.equal(item.plaintext.length + 16);
        const opened = referenceOpen('chacha20-poly1305', item.key, item.nonce, item.aad, sealed[i]);
        expect(opened, what).to.not.equal(null);
        expect(Buffer.compare(opened!, item.plaintext), what).to.equal(0);
        checked++;
      });
    }
    expect(checked).to.equal(CASES);
  });

  it(`node:crypto seals, core opens (${CASES} cases, seed ${seed + 1})`, () => {
    const next = prng(seed + 1);
    const items = randomCases(next, CASES);
    let checked = 0;
    for (let start = 0; start < items.length; start += BATCH) {
      const batch = items.slice(start, start + BATCH);
      const opened = core.openBatch(batch.map((item) => ({
        ...item, sealed: referenceSeal('chacha20-poly1305', item.key, item.nonce, item.aad, item.plaintext),
      })));
      batch.forEach((item, i) => {
        const what = `case ${start + i}: ${item.plaintext.length} bytes, aad ${item.aad.length} (seed ${seed + 1})`;
        expect(opened[i], what).to.not.equal(null);
        expect(Buffer.compare(opened[i]!, item.plaintext), what).to.equal(0);
        checked++;
      });
    }
    expect(checked).to.equal(CASES);
  });
});
