// Envelope batches (the encryptor's and decryptor's hot path) of both algorithms: against node:crypto,
// headers and nonces written by the cipher (distinct nonces, keys shared by several items), gaps in
// the associated-data arena (where another algorithm's items lie), forged, re-headed and too-short
// envelopes, malformed batches, batches cut into several calls, nothing left in the module's memory.

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { loadAeadRegistry, type AeadRegistry, type BatchAead } from '../../../src/crypto/index.js';
import { prng, referenceOpen, referenceSeal, testSeed, type ReferenceCipher } from './helpers.js';
import { aadOf, HEADER, headerOf, MiB, nonceOf, openBatch, PREFIX, randomCases, referenceEnvelope, sealBatch, sealKey } from './envelope-cases.js';

const algorithms: [string, ReferenceCipher][] = [['chacha20-poly1305 (wasm core)', 'chacha20-poly1305'], ['aes-256-gcm (node:crypto)', 'aes-256-gcm']];

describe('envelope batches', function () {
  this.timeout(60_000);
  const seed = testSeed();
  let registry: AeadRegistry;

  before(async () => {
    registry = await loadAeadRegistry();
  });

  for (const [label, reference] of algorithms) {
    describe(label, () => {
      let aead: BatchAead;
      before(() => {
        aead = registry.get(reference);
      });

      it(`seals prefix || nonce || ciphertext || tag that node:crypto opens, with a fresh nonce per item (seed ${seed})`, () => {
        const next = prng(seed);
        const cases = randomCases(2000, next, 600, 37); // keys shared by several items; several calls of the wasm core
        const sealed = aead.sealEnvelopes(sealBatch(cases, next));
        const again = aead.sealEnvelopes(sealBatch(cases, next));
        expect(sealed).to.have.length(cases.length);
        cases.forEach((c, i) => {
          const what = `case ${i} (seed ${seed})`;
          expect(Buffer.isBuffer(sealed[i]), what).to.equal(true);
          expect(Buffer.compare(sealed[i].subarray(0, PREFIX), c.key.prefix), what).to.equal(0);
          const opened = referenceOpen(reference, c.key.key, nonceOf(sealed[i]), aadOf(c, headerOf(sealed[i])), sealed[i].subarray(HEADER));
          expect(opened, what).to.not.equal(null);
          expect(Buffer.compare(opened!, c.plaintext), what).to.equal(0);
        });
        const nonces = new Set([...sealed, ...again].map((e) => Buffer.from(nonceOf(e)).toString('hex')));
        expect(nonces.size, 'distinct nonces across two batches').to.equal(2 * cases.length);
      });

      it(`opens what node:crypto sealed, and nothing forged (seed ${seed + 1})`, () => {
        const next = prng(seed + 1);
        const cases = randomCases(2000, next, 600, 101); // several calls of the wasm core
        const envelopes = cases.map((c) => referenceEnvelope(reference, c));
        const forged = new Set<number>();
        const tampered = envelopes.map((e, i) => {
          if (i % 4 !== 3) return e;
          forged.add(i);
          const copy = Buffer.from(e);
          const kind = next(4);
          if (kind === 0) copy[HEADER + next(copy.length - HEADER)] ^= 1 << next(8); // ciphertext or tag
          else if (kind === 1) copy[PREFIX + next(12)] ^= 1; // the nonce in the header
          else if (kind === 2) copy[next(PREFIX)] ^= 1; // version, algorithm or key id: the header is authenticated
          else return copy.subarray(0, HEADER + 15); // too short to hold a tag
          return copy;
        });
        const opened = aead.openEnvelopes(openBatch(cases, tampered, next));
        cases.forEach((c, i) => {
          if (forged.has(i)) expect(opened[i], `case ${i}`).to.equal(null);
          else expect(Buffer.compare(opened[i]!, c.plaintext), `case ${i}`).to.equal(0);
        });
      });

      it('fails authentication for associated data of another subject', () => {
        const next = prng(seed + 2);
        const [c] = randomCases(1, next);
        const [envelope] = aead.sealEnvelopes(sealBatch([c], next));
        const moved = { ...c, tail: Buffer.from('someone-else') };
        expect(aead.openEnvelopes(openBatch([moved], [envelope], next))).to.deep.equal([null]);
        expect(Buffer.compare(aead.openEnvelopes(openBatch([c], [envelope], next))[0]!, c.plaintext)).to.equal(0);
      });

      it('refuses malformed batches, naming the item', () => {
        const next = prng(seed + 3);
        const cases = randomCases(3, next);
        const good = sealBatch(cases, next);
        const opening = () => openBatch(cases, cases.map(() => randomBytes(60)), next);
        expect(() => aead.sealEnvelopes({ ...good, keys: [good.keys[0], { key: randomBytes(31), prefix: randomBytes(PREFIX) }, good.keys[2]] })).to.throw(RangeError, /key 1: key must be 32 bytes/);
        expect(() => aead.sealEnvelopes({ ...good, keys: [good.keys[0], { key: randomBytes(32), prefix: randomBytes(PREFIX + 1) }, good.keys[2]] })).to.throw(RangeError, /key 1: prefix must be 10 bytes/);
        expect(() => aead.sealEnvelopes({ ...good, keyIndexes: [0, 3, 2] })).to.throw(RangeError, /item 1: key index 3 is not one of the batch's 3 keys/);
        expect(() => aead.sealEnvelopes({ ...good, keyIndexes: [0, 1.5, 2] })).to.throw(RangeError, /item 1: key index/);
        expect(() => aead.sealEnvelopes({ ...good, plaintexts: good.plaintexts.slice(1) })).to.throw(RangeError, /one entry per item/);
        expect(() => aead.sealEnvelopes({ ...good, aadStarts: [good.aadStarts[0], good.aadStarts[1], good.aad.length] })).to.throw(RangeError, /item 2: associated data .* outside/);
        expect(() => aead.sealEnvelopes({ ...good, aadStarts: [-1, good.aadStarts[1], good.aadStarts[2]] })).to.throw(RangeError, /item 0: associated data .* outside/);
        expect(() => aead.sealEnvelopes({ ...good, aadLengths: [HEADER - 1, HEADER, HEADER] })).to.throw(RangeError, /item 0: associated data shorter than the 22-byte header/);
        expect(() => aead.sealEnvelopes({ ...good, prefixBytes: 33 })).to.throw(RangeError, /prefixBytes/);
        // two items sharing associated data would share a header
        expect(() => aead.sealEnvelopes({ ...good, aadStarts: [good.aadStarts[0], good.aadStarts[0], good.aadStarts[2]] })).to.throw(RangeError, /item 1: .* without overlapping/);
        expect(() => aead.sealEnvelopes({ ...good, aadStarts: [good.aadStarts[1], good.aadStarts[0], good.aadStarts[2]], aadLengths: [good.aadLengths[1], good.aadLengths[0], good.aadLengths[2]] })).to.throw(RangeError, /item 1: .* follow the previous/);
        expect(() => aead.openEnvelopes({ ...opening(), aadLengths: [HEADER, HEADER - 1, HEADER] })).to.throw(RangeError, /item 1: associated data shorter/);
        expect(() => aead.openEnvelopes({ ...opening(), envelopes: [randomBytes(60), 'x' as unknown as Uint8Array, randomBytes(60)] })).to.throw(TypeError, /item 1/);
        expect(() => aead.openEnvelopes({ ...opening(), keys: [randomBytes(32), randomBytes(32), randomBytes(16)] })).to.throw(RangeError, /key 2: key must be 32 bytes/);
      });
    });
  }

  it('the wasm core cuts a 40 MiB batch into calls and keeps its memory near the largest item', async () => {
    const fresh = (await loadAeadRegistry()).get('chacha20-poly1305') as BatchAead & { memoryBytes: number };
    const next = prng(seed + 4);
    const cases = Array.from({ length: 40 }, () => ({ key: sealKey(), tail: randomBytes(10), plaintext: randomBytes(MiB) }));
    const sealed = fresh.sealEnvelopes(sealBatch(cases, next));
    expect(fresh.memoryBytes).to.be.below(3 * MiB);
    const opened = fresh.openEnvelopes(openBatch(cases, sealed, next));
    cases.forEach((c, i) => {
      const header = headerOf(sealed[i]);
      expect(Buffer.compare(sealed[i].subarray(HEADER), referenceSeal('chacha20-poly1305', c.key.key, nonceOf(header), aadOf(c, header), c.plaintext)), `case ${i}`).to.equal(0);
      expect(Buffer.compare(opened[i]!, c.plaintext), `case ${i}`).to.equal(0);
    });
  });

  it('the wasm core counts gaps in the arena against its memory limit (items far apart go in separate calls)', async () => {
    const fresh = (await loadAeadRegistry()).get('chacha20-poly1305') as BatchAead & { memoryBytes: number };
    const next = prng(seed + 7);
    const cases = randomCases(2, next);
    const aad = Buffer.alloc(64 * MiB);
    const aadLengths = cases.map((c) => HEADER + c.tail.length);
    const aadStarts = [0, aad.length - aadLengths[1]];
    cases.forEach((c, i) => aad.set(c.tail, aadStarts[i] + HEADER));
    const batch = { aad, aadStarts, aadLengths, keyIndexes: [0, 1], prefixBytes: PREFIX };
    const sealed = fresh.sealEnvelopes({ ...batch, keys: cases.map((c) => c.key), plaintexts: cases.map((c) => c.plaintext) });
    const opened = fresh.openEnvelopes({ ...batch, keys: cases.map((c) => c.key.key), envelopes: sealed });
    expect(fresh.memoryBytes).to.be.below(MiB);
    cases.forEach((c, i) => expect(Buffer.compare(opened[i]!, c.plaintext), `case ${i}`).to.equal(0));
  });

  it('the wasm core leaves no key, subject (associated data) or plaintext in its memory, after a seal and after an open', async () => {
    const fresh = (await loadAeadRegistry()).get('chacha20-poly1305');
    const memory = (): Buffer => Buffer.from((fresh as unknown as { core: { memory: { buffer: ArrayBuffer } } }).core.memory.buffer);
    const next = prng(seed + 5);
    // (over 1 MiB in all: several calls, after one key table)
    const cases = randomCases(20, next).map((c) => ({ ...c, tail: randomBytes(20), plaintext: randomBytes(100 + next(100_000)) }));
    const expectNothingLeft = (after: string) => {
      const heap = memory();
      cases.forEach((c, i) => {
        // (headers and nonces are public: they precede every ciphertext)
        for (const [what, secret] of [['key', c.key.key], ['subject', c.tail], ['plaintext', c.plaintext]] as const) {
          expect(heap.indexOf(Buffer.from(secret)), `${after}: case ${i} ${what}`).to.equal(-1);
        }
      });
    };
    const sealed = fresh.sealEnvelopes(sealBatch(cases, next));
    expectNothingLeft('after a seal');
    const opened = fresh.openEnvelopes(openBatch(cases, sealed, next));
    expect(opened.every((o) => o !== null)).to.equal(true);
    expectNothingLeft('after an open');
  });

  it('results do not change when the next batch reuses the module memory', () => {
    const aead = registry.get('chacha20-poly1305');
    const next = prng(seed + 6);
    const cases = randomCases(50, next);
    const first = aead.sealEnvelopes(sealBatch(cases, next)).map((b) => Buffer.from(b));
    const kept = aead.sealEnvelopes(sealBatch(cases, next));
    const copies = kept.map((b) => Buffer.from(b));
    aead.sealEnvelopes(sealBatch(randomCases(50, next), next));
    aead.openEnvelopes(openBatch(cases, first, next));
    kept.forEach((b, i) => expect(Buffer.compare(b, copies[i]), `case ${i}`).to.equal(0));
  });
});
