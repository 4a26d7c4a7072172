// Envelope batches: the hot-path form of a batch, used by the encryptor and the decryptor. Every item
// is an envelope, header || ciphertext || tag, whose header (its key's prefix, then its nonce) also
// begins its associated data; the associated data of the whole batch lies in one arena the caller
// fills, and the batch names each distinct key once. Items are given as parallel arrays of references
// and offsets, so a caller makes no view and no object per record (each cost as much as the cipher
// itself for small records), and the cipher, not the caller, writes headers and draws nonces.
import type { BatchAead, OpenItem, SealItem } from './batch-aead.js';
import { NONCE_BYTES, TAG_BYTES, checkKey, requireBytes } from './batch-aead.js';
import { NoncePool } from './nonces.js';
import { bufferView } from '../wire/buffer-view.js';

/** A key of a batch to seal, with the header bytes that precede the nonce in its envelopes (e.g. version, algorithm, key id). */
export interface EnvelopeSealKey {
  key: Uint8Array;
  prefix: Uint8Array;
}

/**
 * The distinct keys of an envelope batch being built: each key is added the first time one of its
 * items is, and items refer to it by index (`keys` and `indexOf` give the batch's keys and keyIndexes).
 */
export class EnvelopeKeys<Owner extends object, Key> {
  readonly keys: Key[] = [];
  private readonly indexes = new Map<Owner, number>();

  /** @param toKey what the batch takes for an owner's key (called once per owner) */
  constructor(private readonly toKey: (owner: Owner) => Key) {}

  indexOf(owner: Owner): number {
    let index = this.indexes.get(owner);
    if (index === undefined) {
      index = this.keys.push(this.toKey(owner)) - 1;
      this.indexes.set(owner, index);
    }
    return index;
  }
}

let aadScratch = new Uint8Array(0);
const AAD_SCRATCH_MAX_BYTES = 1024 * 1024;

/**
 * Lends `use` an associated-data arena of `bytes` bytes for a batch, zeroed, reused from batch to batch
 * (a new ArrayBuffer cost about as much as sealing a few records, which every small batch paid). The
 * caller fills it and hands it to its batch cipher within `use`, synchronously; it is wiped afterwards,
 * since it holds subject ids. An arena larger than AAD_SCRATCH_MAX_BYTES is made for its batch alone.
 */
export function withAadArena<T>(bytes: number, use: (arena: Uint8Array) => T): T {
  if (bytes > AAD_SCRATCH_MAX_BYTES) return use(new Uint8Array(bytes));
  if (aadScratch.length < bytes) aadScratch = new Uint8Array(Math.min(AAD_SCRATCH_MAX_BYTES, Math.max(bytes, 2 * aadScratch.length, 4096)));
  const arena = aadScratch.subarray(0, bytes);
  try {
    return use(arena);
  } finally {
    arena.fill(0);
  }
}

/** Largest key prefix: the wasm core keeps a key and its prefix in a 64-byte entry. */
export const MAX_PREFIX_BYTES = 32;

interface EnvelopeItems {
  /** Header bytes before the nonce; the header is prefixBytes + 12 bytes long. */
  prefixBytes: number;
  /**
   * The associated data of every item: item i's is aad[aadStarts[i], aadStarts[i] + aadLengths[i]),
   * at least a header long, of which the cipher supplies the header bytes (what the arena holds there
   * is ignored). Items lie in the arena in their order, without overlapping (gaps are allowed).
   */
  aad: Uint8Array;
  aadStarts: ArrayLike<number>;
  aadLengths: ArrayLike<number>;
  /** Item i uses keys[keyIndexes[i]]. */
  keyIndexes: ArrayLike<number>;
}

/** Envelopes to seal: each item's header is its key's prefix then a fresh nonce from the CSPRNG. */
export interface EnvelopeSealBatch extends EnvelopeItems {
  keys: readonly EnvelopeSealKey[];
  plaintexts: readonly Uint8Array[];
}

/** Envelopes to open: the header (and so the nonce) of each item is its envelope's own, always authenticated. */
export interface EnvelopeOpenBatch extends EnvelopeItems {
  /** 32-byte keys. */
  keys: readonly Uint8Array[];
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

/** Checks the batch's arrays, not its items (see checkItem); returns the item count. */
function checkItemArrays(batch: EnvelopeItems, texts: readonly Uint8Array[], what: string): number {
  const { aad, aadStarts, aadLengths, keyIndexes, prefixBytes } = batch;
  if (!(aad instanceof Uint8Array)) throw new TypeError('aad must be a Uint8Array');
  if (!isIndex(prefixBytes) || prefixBytes > MAX_PREFIX_BYTES) throw new RangeError(`prefixBytes must be an integer from 0 to ${MAX_PREFIX_BYTES}, got ${prefixBytes}`);
  const count = keyIndexes.length;
  if (aadStarts.length !== count || aadLengths.length !== count || texts.length !== count) {
    throw new RangeError(`keyIndexes, aadStarts, aadLengths and ${what}s must have one entry per item`);
  }
  return count;
}

/**
 * Throws unless item i of a batch whose arrays are checked (checkItemArrays) is well formed: its key
 * index, its text, and its associated data, which follows the previous item's in the arena.
 */
export function checkItem(batch: EnvelopeItems, texts: readonly Uint8Array[], i: number, keyCount: number, what: string): void {
  const { aad, aadStarts, aadLengths } = batch;
  const keyIndex = batch.keyIndexes[i], start = aadStarts[i], length = aadLengths[i];
  // (uint32 checks: an offset, length or index that is not a non-negative integer below 2^32 fails them)
  if (keyIndex >>> 0 !== keyIndex || keyIndex >= keyCount) throw new RangeError(`item ${i}: key index ${keyIndex} is not one of the batch's ${keyCount} keys`);
  if (!(texts[i] instanceof Uint8Array)) requireBytes(texts[i], what, i);
  if (start >>> 0 !== start || length >>> 0 !== length || start + length > aad.length) {
    throw new RangeError(`item ${i}: associated data [${start}, +${length}) lies outside the ${aad.length}-byte arena`);
  }
  const headerBytes = batch.prefixBytes + NONCE_BYTES;
  if (length < headerBytes) throw new RangeError(`item ${i}: associated data shorter than the ${headerBytes}-byte header`);
  if (i > 0 && start < aadStarts[i - 1] + aadLengths[i - 1]) throw new RangeError(`item ${i}: associated data must follow the previous item's in the arena, without overlapping it`);
}

/** Checks what is common to both directions; returns the item count. */
function checkItems(batch: EnvelopeItems, keyCount: number, texts: readonly Uint8Array[], what: string): number {
  const count = checkItemArrays(batch, texts, what);
  for (let i = 0; i < count; i++) checkItem(batch, texts, i, keyCount, what);
  return count;
}

/** Throws unless the batch is well formed. */
export function checkEnvelopeSealBatch(batch: EnvelopeSealBatch): number {
  const count = checkItems(batch, batch.keys.length, batch.plaintexts, 'plaintext');
  checkSealKeys(batch);
  return count;
}

/**
 * Throws unless the batch's arrays and keys are well formed; returns the item count. Its items are
 * left to whoever walks them next (checkItem), so that the walk touches each item once, not twice.
 */
export function checkEnvelopeSealBatchArrays(batch: EnvelopeSealBatch): number {
  const count = checkItemArrays(batch, batch.plaintexts, 'plaintext');
  checkSealKeys(batch);
  return count;
}

function checkSealKeys(batch: EnvelopeSealBatch): void {
  const { keys, prefixBytes } = batch;
  for (let k = 0; k < keys.length; k++) {
    checkKey(keys[k]?.key, k, 'key');
    requireBytes(keys[k].prefix, 'prefix', k, 'key');
    if (keys[k].prefix.length !== prefixBytes) throw new RangeError(`key ${k}: prefix must be ${prefixBytes} bytes, got ${keys[k].prefix.length}`);
  }
}

/** Throws unless the batch is well formed (a too-short envelope is data, not a programming error: null). */
export function checkEnvelopeOpenBatch(batch: EnvelopeOpenBatch): number {
  const count = checkItems(batch, batch.keys.length, batch.envelopes, 'envelope');
  batch.keys.forEach((key, k) => checkKey(key, k, 'key'));
  return count;
}

/** True when the envelope is long enough to hold a header and a tag. */
export const canHoldEnvelope = (envelope: Uint8Array, prefixBytes: number) => envelope.length >= prefixBytes + NONCE_BYTES + TAG_BYTES;


const nonces = new NoncePool();

/** Envelope batches through any item-based batch cipher (a view per item: for the slower algorithms). */
export function sealEnvelopesWithItems(aead: BatchAead, batch: EnvelopeSealBatch): Buffer[] {
  const count = checkEnvelopeSealBatch(batch);
  const { aad, aadStarts, aadLengths, prefixBytes, keys, keyIndexes } = batch;
  const items = new Array<SealItem>(count);
  for (let i = 0; i < count; i++) {
    const key = keys[keyIndexes[i]];
    const itemAad = aad.slice(aadStarts[i], aadStarts[i] + aadLengths[i]); // a copy: the cipher writes its header
    itemAad.set(key.prefix);
    nonces.take(itemAad, prefixBytes);
    items[i] = { key: key.key, nonce: itemAad.subarray(prefixBytes, prefixBytes + NONCE_BYTES), aad: itemAad, plaintext: batch.plaintexts[i], prefix: itemAad.subarray(0, prefixBytes + NONCE_BYTES) };
  }
  return aead.sealBatch(items).map(bufferView);
}

export function openEnvelopesWithItems(aead: BatchAead, batch: EnvelopeOpenBatch): (Buffer | null)[] {
  const count = checkEnvelopeOpenBatch(batch);
  const { aad, aadStarts, aadLengths, prefixBytes, keys, keyIndexes } = batch;
  const headerBytes = prefixBytes + NONCE_BYTES;
  const items = new Array<OpenItem>(count);
  for (let i = 0; i < count; i++) {
    const envelope = batch.envelopes[i];
    const itemAad = aad.slice(aadStarts[i], aadStarts[i] + aadLengths[i]); // a copy: its header is the envelope's
    itemAad.set(envelope.subarray(0, headerBytes));
    // (an envelope too short for a tag makes a malformed item, whose result openBatch makes null)
    items[i] = { key: keys[keyIndexes[i]], nonce: envelope.subarray(prefixBytes, prefixBytes + NONCE_BYTES), aad: itemAad, sealed: envelope.subarray(headerBytes) };
  }
  return aead.openBatch(items).map((plaintext) => (plaintext ? bufferView(plaintext) : null));
}
