// Random envelope batches for the envelope-batch and sealing-thread tests: cases with keys shared by
// several items, laid out in an associated-data arena with gaps (as a batch mixing two algorithms
// leaves it for each), and node:crypto's envelopes to compare with.
import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import type { EnvelopeOpenBatch, EnvelopeSealBatch, EnvelopeSealKey } from '../../../src/crypto/envelope-batch.js';
import { referenceOpen, referenceSeal, type ReferenceCipher } from './helpers.js';

export const PREFIX = 10;
export const HEADER = 22;
export const MiB = 1024 * 1024;

export interface Case {
  key: EnvelopeSealKey;
  /** What follows the header in the associated data (e.g. the subject). */
  tail: Uint8Array;
  plaintext: Uint8Array;
}

export const sealKey = (): EnvelopeSealKey => ({ key: randomBytes(32), prefix: randomBytes(PREFIX) });

/** `keyCount` keys shared round-robin by `count` cases (one key per case by default). */
export function randomCases(count: number, next: (below: number) => number, maxSize = 600, keyCount = count): Case[] {
  const keys = Array.from({ length: keyCount }, sealKey);
  return Array.from({ length: count }, (_, i) => ({ key: keys[i % keyCount], tail: randomBytes(next(40)), plaintext: randomBytes(next(maxSize)) }));
}

/**
 * An arena holding every case's associated data in order (header bytes filled with junk the cipher
 * must ignore), with gaps between them, as a batch that mixes two algorithms leaves it for each of them.
 */
function layOut(cases: Case[], next: (below: number) => number): Pick<EnvelopeSealBatch, 'aad' | 'aadStarts' | 'aadLengths'> {
  const aadStarts = new Array<number>(cases.length);
  let size = 0;
  cases.forEach((c, i) => {
    size += next(3) === 0 ? 0 : next(40);
    aadStarts[i] = size;
    size += HEADER + c.tail.length;
  });
  const aad = randomBytes(size + 3);
  cases.forEach((c, i) => aad.set(c.tail, aadStarts[i] + HEADER));
  return { aad, aadStarts, aadLengths: cases.map((c) => HEADER + c.tail.length) };
}

/** The distinct keys of the cases, and each case's index among them. */
function keyTable<K>(cases: Case[], pick: (key: EnvelopeSealKey) => K): { keys: K[]; keyIndexes: number[] } {
  const distinct = [...new Set(cases.map((c) => c.key))];
  return { keys: distinct.map(pick), keyIndexes: cases.map((c) => distinct.indexOf(c.key)) };
}

export function sealBatch(cases: Case[], next: (below: number) => number): EnvelopeSealBatch {
  return { ...layOut(cases, next), ...keyTable(cases, (k) => k), plaintexts: cases.map((c) => c.plaintext), prefixBytes: PREFIX };
}

export function openBatch(cases: Case[], envelopes: Uint8Array[], next: (below: number) => number): EnvelopeOpenBatch {
  return { ...layOut(cases, next), ...keyTable(cases, (k) => k.key), envelopes, prefixBytes: PREFIX };
}

export const headerOf = (envelope: Uint8Array) => envelope.subarray(0, HEADER);
export const nonceOf = (envelope: Uint8Array) => envelope.subarray(PREFIX, HEADER);
export const aadOf = (c: Case, header: Uint8Array) => Buffer.concat([header, c.tail]);

/** Every envelope is a Buffer with its case's prefix, and opens with node:crypto (ChaCha20-Poly1305) under its case's key to its case's plaintext. */
export function expectEnvelopesOpen(cases: readonly Case[], sealed: readonly Buffer[], what: string): void {
  expect(sealed, what).to.have.length(cases.length);
  cases.forEach((c, i) => {
    expect(Buffer.isBuffer(sealed[i]), `${what}, case ${i}`).to.equal(true);
    expect(Buffer.compare(sealed[i].subarray(0, PREFIX), c.key.prefix), `${what}, case ${i}`).to.equal(0);
    const opened = referenceOpen('chacha20-poly1305', c.key.key, nonceOf(sealed[i]), aadOf(c, headerOf(sealed[i])), sealed[i].subarray(HEADER));
    expect(opened, `${what}, case ${i}`).to.not.equal(null);
    expect(Buffer.compare(opened!, c.plaintext), `${what}, case ${i}`).to.equal(0);
  });
}

/** An envelope sealed by node:crypto under the case's key and prefix, with a random nonce. */
export function referenceEnvelope(reference: ReferenceCipher, c: Case): Buffer {
  const header = Buffer.concat([c.key.prefix, randomBytes(12)]);
  return Buffer.concat([header, referenceSeal(reference, c.key.key, nonceOf(header), aadOf(c, header), c.plaintext)]);
}
