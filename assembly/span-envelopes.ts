// Span envelope batches: the items' plaintexts are not copied in one by one but lie in a span of
// bytes copied in whole (a run of a Kafka fetch, where record values sit one after the other, with
// their keys and headers between), and each item's subject is its key's: the key table entry says
// where in a subject table it lies. The module lays each item out for sealEnvelopes itself: its
// descriptor, its associated data (header || subject) and its envelope region (header || text ||
// tag), so the host does no work per item (its per-item copies cost more than the cipher for small
// records).
//
// Item words (SPAN_ITEM_WORDS u32 per item): key index, text offset, text length; text offsets count
// from `origin`, the span's first byte being at `origin` too. A key table entry (KEY_ENTRY bytes, see
// envelopes.ts) holds at SUBJECT_AT the offset in the subject table of its subject, and its length.

import { copyBytes } from './bytes';
import { KEY_ENTRY } from './envelopes';

export const SPAN_ITEM_WORDS: u32 = 3;
/** Where in a key table entry its subject's offset and length lie (after a prefix of at most 24 bytes). */
export const SUBJECT_AT: u32 = 56;
const DESC_SIZE: usize = 64;
const TAG: usize = 16;
/** Returned for an item whose text is not inside the span or subject not inside the subject table: nothing may be sealed. */
const OUT_OF_BOUNDS: u32 = 0xffffffff;

/**
 * Writes the descriptors of `count` span items at desc, their associated data back to back at aad and
 * their envelope regions back to back at out (the module's sealEnvelopes then fills in keys, nonces
 * and headers). Returns the bytes of associated data written, or OUT_OF_BOUNDS (before writing
 * anything) when an item's key index, text or subject lies outside the key table, span or subject table.
 */
export function stageSpanEnvelopes(
  items: usize, count: u32, keys: usize, keyCount: u32, subjects: usize, subjectBytes: u32,
  span: usize, origin: u32, spanBytes: u32, desc: usize, aad: usize, out: usize, headerBytes: usize,
): u32 {
  const spanEnd = <u64>origin + <u64>spanBytes;
  for (let i: u32 = 0, w = items; i < count; i++, w += SPAN_ITEM_WORDS << 2) {
    const keyIndex = load<u32>(w), textAt = load<u32>(w, 4);
    if (keyIndex >= keyCount || textAt < origin || <u64>textAt + <u64>load<u32>(w, 8) > spanEnd) return OUT_OF_BOUNDS;
  }
  for (let k: u32 = 0, e = keys + SUBJECT_AT; k < keyCount; k++, e += KEY_ENTRY) {
    if (<u64>load<u32>(e) + <u64>load<u32>(e, 4) > <u64>subjectBytes) return OUT_OF_BOUNDS;
  }
  let a = aad, o = out;
  for (let i: u32 = 0, w = items, d = desc; i < count; i++, w += SPAN_ITEM_WORDS << 2, d += DESC_SIZE) {
    const keyIndex = load<u32>(w);
    const entry = keys + <usize>keyIndex * KEY_ENTRY + SUBJECT_AT;
    const subjectLength = <usize>load<u32>(entry, 4);
    const textLength = <usize>load<u32>(w, 8);
    const text = o + headerBytes;
    store<u32>(d, keyIndex); // (sealEnvelopes puts the key there)
    store<u32>(d, <u32>a, 44);
    store<u32>(d, <u32>(headerBytes + subjectLength), 48);
    store<u32>(d, <u32>text, 52);
    store<u32>(d, <u32>textLength, 56);
    // (subjects are short ids: a byte loop beats memory.copy's call out of the generated code)
    const subject = subjects + <usize>load<u32>(entry);
    if (subjectLength <= 32) copyBytes(a + headerBytes, subject, subjectLength);
    else memory.copy(a + headerBytes, subject, subjectLength);
    memory.copy(text, span + <usize>(load<u32>(w, 4) - origin), textLength);
    a += headerBytes + subjectLength;
    o = text + textLength + TAG;
  }
  return <u32>(a - aad);
}
