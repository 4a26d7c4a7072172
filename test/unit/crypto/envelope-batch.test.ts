// Envelope batches (the encryptor's and decryptor's hot path) of both algorithms: against node:crypto,
// with gaps in the associated-data arena (where another algorithm's items lie), forged, re-headed and
// too-short envelopes, malformed batches, batches cut into several calls, nothing left in the module's
// memory.

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { loadAeadRegistry, type AeadRegistry, type BatchAead } from '../../../src/crypto/index.js';
import type { EnvelopeOpenBatch, EnvelopeSealBatch } from '../../../src/crypto/envelope-batch.js';
import { prng, referenceOpen, referenceSeal, testSeed, type ReferenceCipher } from './helpers.js';

const HEADER = 22;
const NONCE_AT = 10;
const MiB = 1024 * 1024;

interface Case {
  key: Uint8Array;
  /** header (random, nonce at NONCE_AT) || the rest of the associated data */
  aad: Uint8Array;
  plaintext: Uint8Array;
}

function randomCases(count: number, next: (below: number) => number, maxSize = 600): Case[] {
  return Array.from({ length: count }, () => ({
    key: randomBytes(32),
    aad: randomBytes(HEADER + next(40)),
    plaintext: randomBytes(next(maxSize)),
  }));
}

/**
 * An arena holding every case's associated data in order, with gaps between them, as a batch that
 * mixes two algorithms leaves it for each of them.
 */
function layOut(cases: Case[], next: (below: number) => number): Pick<EnvelopeSealBatch, 'aad' | 'aadStarts' | 'aadLengths'> {
  const aadStarts = new Array<number>(cases.length);
  let size = 0;
  cases.forEach((c, i) => {
    size += next(3) === 0 ? 0 : next(40);
    aadStarts[i] = size;
    size += c.aad.length;
  });
  const aad = randomBytes(size + 3);
  cases.forEach((c, i) => aad.set(c.aad, aadStarts[i]));
  return { aad, aadStarts, aadLengths: cases.map((c) => c.aad.length) };
}

function sealBatch(cases: Case[], next: (below: number) => number): EnvelopeSealBatch {
  return { ...layOut(cases, next), keys: cases.map((c) => c.key), plaintexts: cases.map((c) => c.plaintext), headerBytes: HEADER, nonceAt: NONCE_AT };
}

function openBatch(cases: Case[], envelopes: Uint8Array[], next: (below: number) => number): EnvelopeOpenBatch {
  return { ...layOut(cases, next), keys: cases.map((c) => c.key), envelopes, headerBytes: HEADER, nonceAt: NONCE_AT };
}

const nonceOf = (c: Case) => c.aad.subarray(NONCE_AT, NONCE_AT + 12);
const headerOf = (c: Case) => c.aad.subarray(0, HEADER);
const envelopeOf = (c: Case, sealed: Uint8Array) => Buffer.concat([headerOf(c), sealed]);

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

      it(`seals header || ciphertext || tag that node:crypto opens (seed ${seed})`, () => {
        const next = prng(seed);
        const cases = randomCases(500, next);
        const sealed = aead.sealEnvelopes(sealBatch(cases, next));
        expect(sealed).to.have.length(cases.length);
        cases.forEach((c, i) => {
          const what = `case ${i} (seed ${seed})`;
          expect(Buffer.isBuffer(sealed[i]), what).to.equal(true);
          expect(Buffer.compare(sealed[i].subarray(0, HEADER), headerOf(c)), what).to.equal(0);
          const opened = referenceOpen(reference, c.key, nonceOf(c), c.aad, sealed[i].subarray(HEADER));
          expect(opened, what).to.not.equal(null);
          expect(Buffer.compare(opened!, c.plaintext), what).to.equal(0);
        });
      });

      it(`opens what node:crypto sealed, and nothing forged (seed ${seed + 1})`, () => {
        const next = prng(seed + 1);
        const cases = randomCases(300, next);
        const envelopes = cases.map((c) => envelopeOf(c, referenceSeal(reference, c.key, nonceOf(c), c.aad, c.plaintext)));
        const forged = new Set<number>();
        const tampered = envelopes.map((e, i) => {
          if (i % 4 !== 3) return e;
          forged.add(i);
          const copy = Buffer.from(e);
          const kind = i % 4;
          if (kind === 0) copy[HEADER + next(copy.length - HEADER)] ^= 1 << next(8); // ciphertext or tag
          else if (kind === 1) copy[NONCE_AT + next(12)] ^= 1; // the nonce in the header
          else if (kind === 2) copy[next(NONCE_AT)] ^= 1; // version, algorithm or key id: the header is authenticated
          else return copy.subarray(0, HEADER + 15); // too short to hold a tag
          return copy;
        });
        const batch = openBatch(cases, tampered, next);
        // the header bytes of each item's associated data come from its envelope, not from the arena
        batch.aadStarts.forEach((start) => batch.aad.fill(0xee, start, start + HEADER));
        const opened = aead.openEnvelopes(batch);
        cases.forEach((c, i) => {
          if (forged.has(i)) expect(opened[i], `case ${i}`).to.equal(null);
          else expect(Buffer.compare(opened[i]!, c.plaintext), `case ${i}`).to.equal(0);
        });
      });

      it('fails authentication for associated data of another subject', () => {
        const next = prng(seed + 2);
        const [c] = randomCases(1, next);
        const [envelope] = aead.sealEnvelopes(sealBatch([c], next));
        const moved = { ...c, aad: Buffer.concat([headerOf(c), Buffer.from('someone-else')]) };
        expect(aead.openEnvelopes(openBatch([moved], [envelope], next))).to.deep.equal([null]);
        expect(Buffer.compare(aead.openEnvelopes(openBatch([c], [envelope], next))[0]!, c.plaintext)).to.equal(0);
      });

      it('refuses malformed batches, naming the item', () => {
        const next = prng(seed + 3);
        const cases = randomCases(3, next);
        const good = sealBatch(cases, next);
        expect(() => aead.sealEnvelopes({ ...good, keys: [good.keys[0], randomBytes(31), good.keys[2]] })).to.throw(RangeError, /item 1: key must be 32 bytes/);
        expect(() => aead.sealEnvelopes({ ...good, plaintexts: good.plaintexts.slice(1) })).to.throw(RangeError, /one entry per item/);
        expect(() => aead.sealEnvelopes({ ...good, aadStarts: [good.aadStarts[0], good.aadStarts[1], good.aad.length] })).to.throw(RangeError, /item 2: associated data .* outside/);
        expect(() => aead.sealEnvelopes({ ...good, aadLengths: [HEADER - 1, HEADER, HEADER] })).to.throw(RangeError, /item 0: associated data shorter than the 22-byte header/);
        expect(() => aead.sealEnvelopes({ ...good, nonceAt: 11 })).to.throw(RangeError, /nonce/);
        // two items sharing associated data would share a nonce
        expect(() => aead.sealEnvelopes({ ...good, aadStarts: [good.aadStarts[0], good.aadStarts[0], good.aadStarts[2]] })).to.throw(RangeError, /item 1: .* without overlapping/);
        expect(() => aead.sealEnvelopes({ ...good, aadStarts: [good.aadStarts[1], good.aadStarts[0], good.aadStarts[2]], aadLengths: [good.aadLengths[1], good.aadLengths[0], good.aadLengths[2]] })).to.throw(RangeError, /item 1: .* follow the previous/);
        expect(() => aead.openEnvelopes({ ...openBatch(cases, cases.map(() => randomBytes(60)), next), aadLengths: [HEADER, HEADER - 1, HEADER] })).to.throw(RangeError, /item 1: associated data shorter/);
        expect(() => aead.openEnvelopes({ ...openBatch(cases, cases.map(() => randomBytes(60)), next), envelopes: [randomBytes(60), 'x' as unknown as Uint8Array, randomBytes(60)] })).to.throw(TypeError, /item 1/);
      });
    });
  }

  it('the wasm core cuts a batch of over 32 MiB into calls and keeps its memory near that size', async () => {
    const fresh = (await loadAeadRegistry()).get('chacha20-poly1305') as BatchAead & { memoryBytes: number };
    const next = prng(seed + 4);
    const cases = Array.from({ length: 40 }, () => ({ key: randomBytes(32), aad: randomBytes(HEADER + 10), plaintext: randomBytes(MiB) }));
    const sealed = fresh.sealEnvelopes(sealBatch(cases, next));
    expect(fresh.memoryBytes).to.be.below(40 * MiB);
    const opened = fresh.openEnvelopes(openBatch(cases, sealed, next));
    cases.forEach((c, i) => {
      expect(Buffer.compare(sealed[i].subarray(HEADER), referenceSeal('chacha20-poly1305', c.key, nonceOf(c), c.aad, c.plaintext)), `case ${i}`).to.equal(0);
      expect(Buffer.compare(opened[i]!, c.plaintext), `case ${i}`).to.equal(0);
    });
  });

  it('the wasm core counts gaps in the arena against its memory limit (items far apart go in separate calls)', async () => {
    const fresh = (await loadAeadRegistry()).get('chacha20-poly1305') as BatchAead & { memoryBytes: number };
    const next = prng(seed + 7);
    const cases = randomCases(2, next);
    const aad = Buffer.alloc(64 * MiB);
    const aadStarts = [0, aad.length - cases[1].aad.length];
    cases.forEach((c, i) => aad.set(c.aad, aadStarts[i]));
    const batch = { aad, aadStarts, aadLengths: cases.map((c) => c.aad.length), keys: cases.map((c) => c.key), headerBytes: HEADER, nonceAt: NONCE_AT };
    const sealed = fresh.sealEnvelopes({ ...batch, plaintexts: cases.map((c) => c.plaintext) });
    const opened = fresh.openEnvelopes({ ...batch, envelopes: sealed });
    expect(fresh.memoryBytes).to.be.below(MiB);
    cases.forEach((c, i) => expect(Buffer.compare(opened[i]!, c.plaintext), `case ${i}`).to.equal(0));
  });

  it('the wasm core leaves no key, subject (associated data) or plaintext in its memory, after a seal and after an open', async () => {
    const fresh = (await loadAeadRegistry()).get('chacha20-poly1305');
    const memory = (): Buffer => Buffer.from((fresh as unknown as { core: { memory: { buffer: ArrayBuffer } } }).core.memory.buffer);
    const next = prng(seed + 5);
    const cases = randomCases(20, next).map((c) => ({ ...c, aad: Buffer.concat([c.aad.subarray(0, HEADER), randomBytes(20)]), plaintext: randomBytes(100 + next(500)) }));
    const expectNothingLeft = (after: string) => {
      const heap = memory();
      cases.forEach((c, i) => {
        // (headers and nonces are public: they precede every ciphertext)
        for (const [what, secret] of [['key', c.key], ['subject', c.aad.subarray(HEADER)], ['plaintext', c.plaintext]] as const) {
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
