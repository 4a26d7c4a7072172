// Span envelope batches, the sealing thread's form of a large batch of whole values: instead of each
// plaintext and subject being copied on the main thread (into an associated-data arena, then into a
// packed run), a run of items is the span of the bytes its records were fetched in (a Kafka fetch holds
// the records' values one after the other, with their keys and headers between), copied in one
// piece, plus three words per item saying which key it takes and where its text lies; each key brings
// its subject. The thread's crypto core lays out every envelope and associated data itself
// (assembly/span-envelopes.ts). The caller walks its records once, adding each to a SpanBatch.
//
// A run in its transfer buffer (moved to the sealing thread and back, not copied):
//   [ items: count * 3 u32 ][ key table: keyCount * KEY_ENTRY ][ subjects ][ span ][ out: envelopes back to back ]
// Item words: the key's index in the run's table, the text's offset and length, offsets counting from
// the span's origin (the byte offset in the fetch's buffer where the span starts). A key table entry
// holds the key and its envelope prefix, and at SUBJECT_AT the offset and length of its subject in the
// subjects area. The thread seals into out, then zeroes the key table, subjects and span (keys,
// subject ids, plaintexts) before the buffer comes back.
import { NONCE_BYTES, TAG_BYTES } from '../aead-items.js';
import { KEY_ENTRY, SPAN_ITEM_WORDS, SUBJECT_AT } from '../arena-layout.js';
import type { EnvelopeSealKey } from '../envelope-batch.js';
const KEY_ENTRY_WORDS = KEY_ENTRY / 4;
const SUBJECT_WORD = SUBJECT_AT / 4;

/**
 * A run's envelopes take about this many bytes: its buffer (span, envelopes, words, keys) then fits a
 * pooled 512 KiB buffer for records of 100 bytes and more, and the thread seals one run while the main
 * thread walks the records of the next.
 */
const RUN_OUT_BYTES = 192 * 1024;
/** A run's span stops growing at this many bytes (records with large headers between their values). */
const RUN_SPAN_BYTES = 256 * 1024;

export interface SpanRunLayout {
  count: number;
  keyCount: number;
  prefixBytes: number;
  /** Byte offsets in the buffer (the item words start at 0). */
  keysAt: number;
  subjectsAt: number;
  subjectBytes: number;
  spanAt: number;
  spanBytes: number;
  /** Byte offset in the fetch's buffer of the span's first byte: item offsets count from it. */
  origin: number;
  outAt: number;
  outBytes: number;
  /** Associated data of all items (header || subject each): what the core's arena needs for it. */
  aadBytes: number;
}

/**
 * A key as span runs take it, with the subject it seals for: its table entry (key, then envelope
 * prefix) as words, the subject's bytes as words, and which run last took it at which index (a run's
 * table holds each of its keys once). Made once per key and kept with it: `wipe()` it when dropped.
 */
export class SpanKey {
  readonly words: Uint32Array;
  readonly subjectWords: Uint32Array;
  readonly subjectLength: number;
  /** The run token and table index of the last run that took this key. */
  run = 0;
  local = 0;

  constructor(key: EnvelopeSealKey, subject: Uint8Array) {
    if (key.prefix.length > SUBJECT_AT - 32) throw new RangeError(`a span key's prefix must be at most ${SUBJECT_AT - 32} bytes`);
    // (one buffer for the entry and the subject: a table of 100k subjects keeps one of these each)
    const subjectWordCount = (subject.length + 3) >>> 2;
    const buffer = new ArrayBuffer((KEY_ENTRY_WORDS + subjectWordCount) * 4);
    const bytes = new Uint8Array(buffer);
    bytes.set(key.key, 0);
    bytes.set(key.prefix, 32);
    bytes.set(subject, KEY_ENTRY_WORDS * 4);
    this.words = new Uint32Array(buffer, 0, KEY_ENTRY_WORDS);
    this.subjectWords = new Uint32Array(buffer, KEY_ENTRY_WORDS * 4, subjectWordCount);
    this.subjectLength = subject.length;
  }

  /** The subject's bytes (a view of this key's own copy). */
  get subject(): Uint8Array {
    return new Uint8Array(this.subjectWords.buffer, this.subjectWords.byteOffset, this.subjectLength);
  }

  wipe(): void {
    this.words.fill(0);
    this.subjectWords.fill(0);
  }
}

/** Tokens of runs, unique in the process: a key's mark from an earlier run never matches a new one. */
let lastRunToken = 0;

/** A run of a SpanBatch: items first..first + count, their bytes in `source` from `origin` on. */
export interface SpanRun {
  token: number;
  source: ArrayBuffer;
  first: number;
  count: number;
  keys: SpanKey[];
  /** Bytes of its keys' subjects, each padded to a word. */
  subjectBytes: number;
  origin: number;
  end: number;
  textBytes: number;
  /** Bytes of its items' associated data (header || subject each). */
  aadBytes: number;
}

/**
 * The items of a batch, cut into runs as they are added: a run ends when its envelopes reach about
 * RUN_OUT_BYTES, its span RUN_SPAN_BYTES, or the next item lies in another buffer (compressed record
 * batches are each decompressed into a buffer of their own).
 */
export class SpanBatch {
  readonly runs: SpanRun[] = [];
  /** SPAN_ITEM_WORDS words per item, offsets still in their source buffer's terms. */
  readonly items: Uint32Array;
  count = 0;
  textBytes = 0;
  private run: SpanRun | undefined;

  /** @param capacity items at most; @param prefixBytes the envelope prefix (header before the nonce) of every key */
  constructor(capacity: number, readonly prefixBytes: number) {
    this.items = new Uint32Array(capacity * SPAN_ITEM_WORDS);
  }

  /**
   * Adds an item sealed under `key` (its subject's): its text, a view of `source`. Returns its index.
   * (The caller passes text.buffer, which it reads anyway: the getter is not free, and this runs per record.)
   */
  add(key: SpanKey, source: ArrayBuffer, text: Uint8Array): number {
    const textAt = text.byteOffset, textLength = text.length;
    let run = this.run;
    if (
      run === undefined || run.source !== source ||
      runOutBytes(run, this.prefixBytes) >= RUN_OUT_BYTES ||
      Math.max(run.end, textAt + textLength) - Math.min(run.origin, textAt) > RUN_SPAN_BYTES
    ) {
      run = this.run = { token: ++lastRunToken, source, first: this.count, count: 0, keys: [], subjectBytes: 0, origin: textAt, end: textAt + textLength, textBytes: 0, aadBytes: 0 };
      this.runs.push(run);
    } else {
      if (textAt < run.origin) run.origin = textAt;
      if (textAt + textLength > run.end) run.end = textAt + textLength;
    }
    if (key.run !== run.token) {
      key.run = run.token;
      key.local = run.keys.length;
      run.keys.push(key);
      run.subjectBytes += key.subjectWords.length * 4;
    }
    const item = this.count++;
    const w = item * SPAN_ITEM_WORDS;
    const items = this.items;
    if (w >= items.length) throw new RangeError(`span item ${item} is past the ${items.length / SPAN_ITEM_WORDS} the batch was made for`);
    items[w] = key.local;
    items[w + 1] = textAt;
    items[w + 2] = textLength;
    run.count++;
    run.textBytes += textLength;
    run.aadBytes += this.prefixBytes + NONCE_BYTES + key.subjectLength;
    this.textBytes += textLength;
    return item;
  }

  /** The length of item i's text. */
  textLength(item: number): number {
    return this.items[item * SPAN_ITEM_WORDS + 2];
  }
}

/** The bytes of a run's envelopes: each its header, text and tag. */
export const runOutBytes = (run: SpanRun, prefixBytes: number): number => run.textBytes + run.count * (prefixBytes + NONCE_BYTES + TAG_BYTES);

/** Packs a run into a buffer from `take(bytes)`: its item words and span in one copy each, its keys and subjects word by word. */
export function packSpanRun(batch: SpanBatch, run: SpanRun, take: (bytes: number) => ArrayBuffer): { buffer: ArrayBuffer; layout: SpanRunLayout } {
  const { count, keys, origin } = run;
  const { prefixBytes } = batch;
  const keysAt = count * SPAN_ITEM_WORDS * 4;
  const subjectsAt = keysAt + keys.length * KEY_ENTRY;
  const spanAt = subjectsAt + run.subjectBytes;
  const spanBytes = run.end - origin;
  const outAt = spanAt + spanBytes;
  const outBytes = runOutBytes(run, prefixBytes);
  const buffer = take(outAt + outBytes);
  new Uint32Array(buffer, 0, count * SPAN_ITEM_WORDS).set(batch.items.subarray(run.first * SPAN_ITEM_WORDS, (run.first + count) * SPAN_ITEM_WORDS));
  // (word by word: a set() call costs more than a key's few words, and a run over many subjects holds hundreds of keys)
  const table = new Uint32Array(buffer, keysAt, keys.length * KEY_ENTRY_WORDS + (run.subjectBytes >>> 2));
  let subjectWord = keys.length * KEY_ENTRY_WORDS;
  for (let k = 0; k < keys.length; k++) {
    const { words, subjectWords, subjectLength } = keys[k];
    const to = k * KEY_ENTRY_WORDS;
    for (let w = 0; w < KEY_ENTRY_WORDS; w++) table[to + w] = words[w];
    table[to + SUBJECT_WORD] = (subjectWord - keys.length * KEY_ENTRY_WORDS) * 4;
    table[to + SUBJECT_WORD + 1] = subjectLength;
    for (let w = 0; w < subjectWords.length; w++) table[subjectWord++] = subjectWords[w];
  }
  new Uint8Array(buffer, spanAt, spanBytes).set(new Uint8Array(run.source, origin, spanBytes));
  const layout = { count, keyCount: keys.length, prefixBytes, keysAt, subjectsAt, subjectBytes: run.subjectBytes, spanAt, spanBytes, origin, outAt, outBytes, aadBytes: run.aadBytes };
  return { buffer, layout };
}

/** Zeroes what is secret in a run's buffer once it is sealed: its key table, subjects and span (keys, subject ids, plaintexts). */
export function wipeSpanSecrets(buffer: ArrayBuffer, layout: SpanRunLayout): void {
  new Uint8Array(buffer).fill(0, layout.keysAt, layout.spanAt + layout.spanBytes);
}
