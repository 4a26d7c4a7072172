// Envelope batches: the hot-path form of a batch, used by the encryptor and the decryptor. Every item
// is an envelope (header || ciphertext || tag) whose header holds its nonce and also begins its
// associated data, and the associated data of the whole batch lies in one arena the caller fills.
// Items are given as parallel arrays of references and offsets, so a caller makes no view and no
// object per record (each cost as much as the cipher itself for small records).
import type { BatchAead, OpenItem, SealItem } from './batch-aead.js';
import { NONCE_BYTES, TAG_BYTES, checkKey, requireBytes } from './batch-aead.js';

export interface EnvelopeLayout {
  /** Header bytes before the ciphertext; also the first bytes of every item's associated data. */
  headerBytes: number;
  /** Offset of the 12-byte nonce in the header. */
  nonceAt: number;
}

interface EnvelopeItems extends EnvelopeLayout {
  /**
   * The associated data of every item: item i's is aad[aadStarts[i], aadStarts[i] + aadLengths[i]),
   * at least headerBytes long. Items lie in the arena in their order, without overlapping (gaps are
   * allowed): no two items can share the bytes their nonces come from.
   */
  aad: Uint8Array;
  aadStarts: readonly number[];
  aadLengths: readonly number[];
  /** 32-byte key of each item. */
  keys: readonly Uint8Array[];
}

/** Envelopes to seal: each item's header is the start of its associated data (nonce from the CSPRNG). */
export interface EnvelopeSealBatch extends EnvelopeItems {
  plaintexts: readonly Uint8Array[];
}

/**
 * Envelopes to open: the nonce is read from each envelope's header, and the first headerBytes bytes of
 * each item's associated data are the envelope's header (the cipher puts them there itself: what the
 * arena holds in those bytes is ignored), so the header is always authenticated.
 */
export interface EnvelopeOpenBatch extends EnvelopeItems {
  envelopes: readonly Uint8Array[];
}

/** Batch ciphers that take envelope batches. */
export interface EnvelopeAead {
  /** header || ciphertext || tag of each item. Throws TypeError/RangeError on a malformed batch. */
  sealEnvelopes(batch: EnvelopeSealBatch): Buffer[];
  /** The plaintext of each item, or null when authentication failed or the envelope is too short. */
  openEnvelopes(batch: EnvelopeOpenBatch): (Buffer | null)[];
}

const isIndex = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/** Checks what is common to both directions; returns the item count. */
function checkItems(batch: EnvelopeItems, texts: readonly Uint8Array[], what: string): number {
  const { aad, aadStarts, aadLengths, keys, headerBytes, nonceAt } = batch;
  if (!(aad instanceof Uint8Array)) throw new TypeError('aad must be a Uint8Array');
  if (!isIndex(headerBytes) || !isIndex(nonceAt) || nonceAt + NONCE_BYTES > headerBytes) {
    throw new RangeError(`the nonce (at ${nonceAt}, ${NONCE_BYTES} bytes) must lie within the ${headerBytes}-byte header`);
  }
  const count = keys.length;
  if (aadStarts.length !== count || aadLengths.length !== count || texts.length !== count) {
    throw new RangeError(`keys, aadStarts, aadLengths and ${what}s must have one entry per item`);
  }
  let previousEnd = 0;
  for (let i = 0; i < count; i++) {
    checkKey(keys[i], i);
    requireBytes(texts[i], what, i);
    const start = aadStarts[i], length = aadLengths[i];
    if (!isIndex(start) || !isIndex(length) || start + length > aad.length) {
      throw new RangeError(`item ${i}: associated data [${start}, +${length}) lies outside the ${aad.length}-byte arena`);
    }
    if (length < headerBytes) throw new RangeError(`item ${i}: associated data shorter than the ${headerBytes}-byte header`);
    if (start < previousEnd) throw new RangeError(`item ${i}: associated data must follow the previous item's in the arena, without overlapping it`);
    previousEnd = start + length;
  }
  return count;
}

/** Throws unless the batch is well formed. */
export function checkEnvelopeSealBatch(batch: EnvelopeSealBatch): number {
  return checkItems(batch, batch.plaintexts, 'plaintext');
}

/** Throws unless the batch is well formed (a too-short envelope is data, not a programming error: null). */
export function checkEnvelopeOpenBatch(batch: EnvelopeOpenBatch): number {
  return checkItems(batch, batch.envelopes, 'envelope');
}

/** True when the envelope is long enough to hold a header and a tag. */
export const canHoldEnvelope = (envelope: Uint8Array, headerBytes: number) => envelope.length >= headerBytes + TAG_BYTES;

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Envelope batches through any item-based batch cipher (a view per item: for the slower algorithms). */
export function sealEnvelopesWithItems(aead: BatchAead, batch: EnvelopeSealBatch): Buffer[] {
  const count = checkEnvelopeSealBatch(batch);
  const { aad, aadStarts, aadLengths, headerBytes, nonceAt } = batch;
  const items = new Array<SealItem>(count);
  for (let i = 0; i < count; i++) {
    const itemAad = aad.subarray(aadStarts[i], aadStarts[i] + aadLengths[i]);
    items[i] = { key: batch.keys[i], nonce: itemAad.subarray(nonceAt, nonceAt + NONCE_BYTES), aad: itemAad, plaintext: batch.plaintexts[i], prefix: itemAad.subarray(0, headerBytes) };
  }
  return aead.sealBatch(items).map(asBuffer);
}

export function openEnvelopesWithItems(aead: BatchAead, batch: EnvelopeOpenBatch): (Buffer | null)[] {
  const count = checkEnvelopeOpenBatch(batch);
  const { aad, aadStarts, aadLengths, headerBytes, nonceAt } = batch;
  const items = new Array<OpenItem>(count);
  for (let i = 0; i < count; i++) {
    const envelope = batch.envelopes[i];
    const itemAad = aad.slice(aadStarts[i], aadStarts[i] + aadLengths[i]); // a copy: its header is the envelope's
    itemAad.set(envelope.subarray(0, headerBytes));
    // (an envelope too short for a tag makes a malformed item, whose result openBatch makes null)
    items[i] = { key: batch.keys[i], nonce: envelope.subarray(nonceAt, nonceAt + NONCE_BYTES), aad: itemAad, sealed: envelope.subarray(headerBytes) };
  }
  return aead.openBatch(items).map((plaintext) => (plaintext ? asBuffer(plaintext) : null));
}
