// The transfer form of an envelope batch sealed on another thread (see sealing-thread.ts): a run of a
// batch's items packed into one ArrayBuffer that is moved to the sealing thread and back, not copied.
//
//   [ keyIndexes | aadStarts | aadLengths | textLengths: count u32 each ][ data ][ aad ][ key table, word-aligned ]
//
// Item k's region in data is header || text || tag, regions back to back in item order (the cipher
// writes header and tag, whatever bytes lie there before); aad is the run's span of the batch's
// associated-data arena, where aadStarts point; the key table holds only the run's own keys, in the
// crypto core's layout (key, then prefix), and keyIndexes point into it. Buffers are reused from run
// to run (a fresh one per run would cost the main thread its page faults), so a buffer may be longer
// than its layout: bytes past it mean nothing. The sealing thread wipes the key table and the aad
// before a buffer comes back.
import { NONCE_BYTES, TAG_BYTES } from '../aead-items.js';
import { KEY_ENTRY } from '../arena-layout.js';
import { checkItem, type EnvelopeSealBatch } from '../envelope-batch.js';

export interface PackedLayout {
  count: number;
  keyCount: number;
  prefixBytes: number;
  /** Byte offsets in the buffer (the item words start at 0). */
  dataAt: number;
  dataBytes: number;
  aadAt: number;
  aadBytes: number;
  keysAt: number;
}

/** A packed run's buffer seen through its layout. */
export interface PackedEnvelopes {
  layout: PackedLayout;
  bytes: Uint8Array;
  keyIndexes: Uint32Array;
  aadStarts: Uint32Array;
  aadLengths: Uint32Array;
  textLengths: Uint32Array;
}

export function packedView(buffer: ArrayBuffer, layout: PackedLayout): PackedEnvelopes {
  const { count } = layout;
  const words = (n: number) => new Uint32Array(buffer, n * count * 4, count);
  return { layout, bytes: new Uint8Array(buffer), keyIndexes: words(0), aadStarts: words(1), aadLengths: words(2), textLengths: words(3) };
}

const KEY_ENTRY_WORDS = KEY_ENTRY / 4;

/**
 * The batch's key table in the core's layout, as words: a run copies its keys' entries from it word
 * by word (a typed-array set() call costs more than copying a key's few words, and a run of a batch
 * over many subjects holds hundreds of keys). The caller wipes it once every run is packed.
 */
export function keyTableWords(keys: EnvelopeSealBatch['keys']): Uint32Array {
  const words = new Uint32Array(keys.length * KEY_ENTRY_WORDS);
  const bytes = new Uint8Array(words.buffer);
  for (let k = 0; k < keys.length; k++) {
    bytes.set(keys[k].key, k * KEY_ENTRY);
    bytes.set(keys[k].prefix, k * KEY_ENTRY + 32);
  }
  return words;
}

/**
 * Packs the run of a batch (its arrays and keys checked: checkEnvelopeSealBatchArrays) that starts at
 * item `start`: items up to about `runBytes` of envelopes, at least one, into a buffer from
 * `take(bytes)`; the run holds `layout.count` items. Checks each item (checkItem) before it takes it:
 * throws on a malformed one. `keyWords`: keyTableWords(batch.keys). `localKey` has an entry per key of
 * the batch, all -1, and is left so.
 */
export function packRun(batch: EnvelopeSealBatch, start: number, runBytes: number, take: (bytes: number) => ArrayBuffer, keyWords: Uint32Array, localKey: Int32Array): { buffer: ArrayBuffer; layout: PackedLayout } {
  const { keys, plaintexts, prefixBytes, aad, aadStarts, aadLengths, keyIndexes } = batch;
  const headerBytes = prefixBytes + NONCE_BYTES;
  let end = start;
  let dataBytes = 0;
  do {
    checkItem(batch, plaintexts, end, keys.length, 'plaintext');
    dataBytes += headerBytes + plaintexts[end++].length + TAG_BYTES;
  } while (end < plaintexts.length && dataBytes < runBytes);
  const count = end - start;
  const lo = aadStarts[start];
  const hi = aadStarts[end - 1] + aadLengths[end - 1]; // (items lie in the arena in order)
  const dataAt = 16 * count;
  const aadAt = dataAt + dataBytes;
  const keysAt = (aadAt + (hi - lo) + 3) & ~3; // (word-aligned: entries are copied as words)
  const buffer = take(keysAt + Math.min(count, keys.length) * KEY_ENTRY);
  const bytes = new Uint8Array(buffer);
  const words = new Uint32Array(buffer, 0, 4 * count);
  const table = new Uint32Array(buffer, keysAt, Math.min(count, keys.length) * KEY_ENTRY_WORDS);
  let keyCount = 0;
  for (let i = start, k = 0, at = dataAt; i < end; i++, k++) {
    const keyIndex = keyIndexes[i];
    let local = localKey[keyIndex];
    if (local < 0) {
      local = localKey[keyIndex] = keyCount++;
      for (let w = 0, to = local * KEY_ENTRY_WORDS, from = keyIndex * KEY_ENTRY_WORDS; w < KEY_ENTRY_WORDS; w++) table[to + w] = keyWords[from + w];
    }
    const text = plaintexts[i];
    words[k] = local;
    words[count + k] = aadStarts[i] - lo;
    words[2 * count + k] = aadLengths[i];
    words[3 * count + k] = text.length;
    bytes.set(text, at + headerBytes);
    at += headerBytes + text.length + TAG_BYTES;
  }
  bytes.set(aad.subarray(lo, hi), aadAt);
  for (let i = start; i < end; i++) localKey[keyIndexes[i]] = -1;
  return { buffer, layout: { count, keyCount, prefixBytes, dataAt, dataBytes, aadAt, aadBytes: hi - lo, keysAt } };
}

/** Zeroes the key table and the associated data (subject ids): all that is secret once sealed. */
export function wipePackedSecrets(buffer: ArrayBuffer, layout: PackedLayout): void {
  const bytes = new Uint8Array(buffer);
  bytes.fill(0, layout.aadAt, layout.aadAt + layout.aadBytes);
  bytes.fill(0, layout.keysAt, layout.keysAt + layout.keyCount * KEY_ENTRY);
}
