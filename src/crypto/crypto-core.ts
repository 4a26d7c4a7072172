// Host side of the WebAssembly ChaCha20-Poly1305 core: lays a batch out in the module's arena, makes
// one call (per 32 MiB of item batch, per 256 KiB of envelope batch), copies the results out.
//
// Arena layout per call (see assembly/batch.ts for the descriptor fields):
//   [ descriptors: count * 64 ][ data: per item prefix || text || tag ][ aad of every item ]
// Item batches (sealBatch/openBatch) copy each item's parts in. Envelope batches (envelope-batch.ts)
// put a key table (each distinct key once, written once per batch) before their calls and, to seal,
// the nonces (from the CSPRNG, in one piece) after the descriptors; each call copies its span of the
// caller's associated-data arena in one piece, and the module writes every header and fills in every
// descriptor's key and nonce (assembly/envelopes.ts).
// The data region is already in output order, so every result is copied out once, in slices of about
// 64 KiB of consecutive items, and is a view of such a fresh copy (see ResultSlabs): results never
// alias wasm memory, which the next batch overwrites. (One slice for a whole batch of 16 MB cost more
// in page faults of the fresh allocation than the encryption; small slices also keep one retained
// result from pinning a whole batch.)

import type { BatchAead, OpenItem, SealItem } from './batch-aead.js';
import { NONCE_BYTES, TAG_BYTES, checkSealItem, isWellFormedOpenItem } from './batch-aead.js';
import { checkArenaLayout, DESC_SIZE, KEY_ENTRY, SPAN_ITEM_WORDS } from './arena-layout.js';
import { canHoldEnvelope, checkEnvelopeOpenBatch, checkEnvelopeSealBatch, type EnvelopeOpenBatch, type EnvelopeSealBatch } from './envelope-batch.js';
import { NoncePool } from './nonces.js';
import type { PackedEnvelopes } from './off-thread/packed-envelopes.js';
import type { SpanRunLayout } from './off-thread/span-envelopes.js';
import { type CoreExports, instantiateCore } from './wasm-module.js';

/** The WebAssembly ChaCha20-Poly1305 (RFC 8439) core. */
export interface CryptoCore extends BatchAead {
  readonly algorithm: 'chacha20-poly1305';
  /** Current size of the module's linear memory, in bytes (grows only when a batch needs more). */
  readonly memoryBytes: number;
}

/** The core as the sealing thread uses it: packed batches sealed in place (see packed-envelopes.ts), and span runs (span-envelopes.ts). */
export interface PackedSealer extends CryptoCore {
  sealPacked(packed: PackedEnvelopes): void;
  /** Seals a span run's items into its out area (the rest of its buffer is left as it was). */
  sealSpanRun(bytes: Uint8Array, layout: SpanRunLayout): void;
}

const STATUS_OK = 0;
/**
 * A batch larger than this is cut into several calls, so the arena (which wasm cannot shrink) stays
 * near this size; a single item larger than this still goes through, alone.
 */
const CALL_BYTES_LIMIT = 32 * 1024 * 1024;
/** Target size of one output slice. */
const OUT_CHUNK = 64 * 1024;

/**
 * Envelope batches go to the module in calls of about this many arena bytes, one after the other in
 * the same region after the batch's key table (written once): the module's working set then stays in
 * the CPU cache, and its memory small, where one call per batch (4 MiB fetches make batches of about
 * 13k records) wrote and read several MiB of arena per batch.
 */
const ENVELOPE_CALL_BYTES = 256 * 1024;

/** Items start..end of an envelope batch, sealed or opened in one call. */
interface EnvelopeCall {
  start: number;
  end: number;
  dataBytes: number;
  aadBytes: number;
  nonceBytes: number;
}

class WasmCryptoCore implements PackedSealer {
  readonly algorithm = 'chacha20-poly1305' as const;
  private buffer: ArrayBuffer | undefined;
  private u8 = new Uint8Array(0);
  private u32 = new Uint32Array(0);
  /** Byte length of each item's region in the data area, reused across calls. */
  private regions = new Uint32Array(1024);
  private readonly results = new ResultSlabs();
  private readonly nonces = new NoncePool();

  constructor(private readonly core: CoreExports) {}

  get memoryBytes(): number {
    return this.core.memory.buffer.byteLength;
  }

  sealBatch(items: readonly SealItem[]): Uint8Array[] {
    for (let i = 0; i < items.length; i++) checkSealItem(items[i], i);
    const results = new Array<Uint8Array>(items.length);
    this.inCalls(items.length, (i) => sealItemBytes(items[i]), (i) => items[i].aad.length, (start, end, dataBytes, aadBytes) =>
      this.sealCall(items, start, end, dataBytes, aadBytes, results));
    return results;
  }

  openBatch(items: readonly OpenItem[]): (Uint8Array | null)[] {
    const results = new Array<Uint8Array | null>(items.length).fill(null);
    // Malformed items never reach the module; the others keep their index.
    const indexes = wellFormedIndexes(items.length, (i) => isWellFormedOpenItem(items[i], i));
    const wellFormed = indexes === null ? items : indexes.map((i) => items[i]);
    this.inCalls(wellFormed.length, (i) => wellFormed[i].sealed.length, (i) => wellFormed[i].aad.length, (start, end, dataBytes, aadBytes) =>
      this.openCall(wellFormed, indexes, start, end, dataBytes, aadBytes, results));
    return results;
  }

  sealEnvelopes(batch: EnvelopeSealBatch): Buffer[] {
    const count = checkEnvelopeSealBatch(batch);
    const results = new Array<Buffer>(count);
    const { plaintexts, keys } = batch;
    const envelopeBytes = batch.prefixBytes + NONCE_BYTES + TAG_BYTES; // beyond the plaintext
    const calls = this.envelopeCalls(count, (i) => envelopeBytes + plaintexts[i].length, arenaBytes(batch), NONCE_BYTES);
    this.withKeyTable(
      calls,
      keys.length,
      (u8, keyTable) => {
        for (let k = 0; k < keys.length; k++) {
          u8.set(keys[k].key, keyTable + k * KEY_ENTRY);
          u8.set(keys[k].prefix, keyTable + k * KEY_ENTRY + 32);
        }
      },
      (keyTable, call) => this.sealEnvelopeCall(batch, keyTable, call, results),
    );
    return results;
  }

  openEnvelopes(batch: EnvelopeOpenBatch): (Buffer | null)[] {
    const count = checkEnvelopeOpenBatch(batch);
    const results = new Array<Buffer | null>(count).fill(null);
    const { envelopes, prefixBytes, keys } = batch;
    // Envelopes too short to hold a tag never reach the module.
    const indexes = wellFormedIndexes(count, (i) => canHoldEnvelope(envelopes[i], prefixBytes));
    const index = indexes === null ? (k: number) => k : (k: number) => indexes[k];
    const calls = this.envelopeCalls(indexes?.length ?? count, (k) => envelopes[index(k)].length, arenaBytes(batch, index), 0);
    this.withKeyTable(
      calls,
      keys.length,
      (u8, keyTable) => {
        for (let k = 0; k < keys.length; k++) u8.set(keys[k], keyTable + k * KEY_ENTRY);
      },
      (keyTable, call) => this.openEnvelopeCall(batch, index, keyTable, call, results),
    );
    return results;
  }

  /**
   * Seals a packed batch in place: each call copies its run of regions and its span of associated
   * data in one piece each, and copies the sealed regions back over them in one piece.
   */
  sealPacked(packed: PackedEnvelopes): void {
    const { layout, bytes, keyIndexes, aadStarts, aadLengths, textLengths } = packed;
    const headerBytes = layout.prefixBytes + NONCE_BYTES;
    const regionBytes = (k: number) => headerBytes + textLengths[k] + TAG_BYTES;
    const aad = bytes.subarray(layout.aadAt, layout.aadAt + layout.aadBytes);
    const calls = this.envelopeCalls(layout.count, regionBytes, arenaBytes({ aadStarts, aadLengths }), NONCE_BYTES);
    let from = layout.dataAt; // (calls run in item order: each one's regions follow the previous one's)
    this.withKeyTable(
      calls,
      layout.keyCount,
      (u8, keyTable) => u8.set(bytes.subarray(layout.keysAt, layout.keysAt + layout.keyCount * KEY_ENTRY), keyTable),
      (keyTable, call) => {
        const { start, end, dataBytes, aadBytes } = call;
        const { desc, nonces, dataStart, aadBase, lo } = this.envelopeArena(layout.keyCount, aad, aadStarts, keyTable, call);
        const { u8, u32 } = this;
        let sealed = false;
        try {
          this.nonces.fill(u8, nonces, call.nonceBytes);
          u8.set(bytes.subarray(from, from + dataBytes), dataStart);
          for (let k = start, d = desc, data = dataStart; k < end; k++, d += DESC_SIZE) {
            writeEnvelopeDescriptor(u32, d, keyIndexes[k], aadBase + aadStarts[k] - lo, aadLengths[k], data + headerBytes, textLengths[k]);
            data += regionBytes(k);
          }
          this.core.sealEnvelopes(desc, end - start, keyTable, nonces, layout.prefixBytes);
          bytes.set(u8.subarray(dataStart, dataStart + dataBytes), from);
          from += dataBytes;
          sealed = true;
        } finally {
          u8.fill(0, aadBase, aadBase + aadBytes); // subject ids
          if (!sealed) u8.fill(0, desc, dataStart + dataBytes); // plaintexts the module may not have reached
        }
      },
    );
  }

  sealSpanRun(bytes: Uint8Array, layout: SpanRunLayout): void {
    const { count, keyCount, prefixBytes, keysAt, subjectBytes, spanAt, spanBytes, origin, outAt, outBytes, aadBytes } = layout;
    // [ key table, subjects ][ descriptors ][ nonces ][ item words ][ span ][ associated data ][ out ]
    const keys = this.reserve(keyCount * KEY_ENTRY + subjectBytes + count * (DESC_SIZE + NONCE_BYTES + SPAN_ITEM_WORDS * 4) + spanBytes + aadBytes + outBytes);
    const subjects = keys + keyCount * KEY_ENTRY;
    const desc = subjects + subjectBytes;
    const nonces = desc + count * DESC_SIZE;
    const items = nonces + count * NONCE_BYTES;
    const span = items + count * SPAN_ITEM_WORDS * 4;
    const aad = span + spanBytes;
    const out = aad + aadBytes;
    const { u8 } = this;
    let sealed = false;
    try {
      u8.set(bytes.subarray(keysAt, keysAt + keyCount * KEY_ENTRY + subjectBytes), keys); // (the subjects follow the table there too)
      u8.set(bytes.subarray(0, count * SPAN_ITEM_WORDS * 4), items);
      u8.set(bytes.subarray(spanAt, spanAt + spanBytes), span);
      this.nonces.fill(u8, nonces, count * NONCE_BYTES);
      const staged = this.core.stageSpanEnvelopes(items, count, keys, keyCount, subjects, subjectBytes, span, origin, spanBytes, desc, aad, out, prefixBytes + NONCE_BYTES) >>> 0;
      if (staged !== aadBytes) throw new RangeError(staged === 0xffff_ffff ? 'a span item lies outside its run (key, subject or text)' : `span run associated data: ${staged} bytes, the layout says ${aadBytes}`);
      this.core.sealEnvelopes(desc, count, keys, nonces, prefixBytes);
      bytes.set(u8.subarray(out, out + outBytes), outAt);
      sealed = true;
    } finally {
      // keys, plaintexts and subject ids; the envelopes too if the module may not have sealed them all
      u8.fill(0, keys, sealed ? out : out + outBytes);
    }
  }

  /**
   * Splits items 0..count into runs whose arena need stays under `limit` (per item: its descriptor,
   * `itemBytes` more, its data and associated data), usually one run; an item over the limit runs alone.
   * aadBytesOf(i, first): what item i adds to its run's associated data (first: it opens the run).
   */
  private inCalls(
    count: number,
    dataBytesOf: (i: number) => number,
    aadBytesOf: (i: number, first: boolean) => number,
    call: (start: number, end: number, dataBytes: number, aadBytes: number) => void,
    limit = CALL_BYTES_LIMIT,
    itemBytes = 0,
  ): void {
    const perItem = DESC_SIZE + itemBytes;
    let start = 0, dataBytes = 0, aadBytes = 0;
    for (let i = 0; i < count; i++) {
      const data = dataBytesOf(i);
      let aad = aadBytesOf(i, i === start);
      const total = (i - start) * perItem + dataBytes + aadBytes;
      if (i > start && total + perItem + data + aad > limit) {
        call(start, i, dataBytes, aadBytes);
        start = i;
        dataBytes = aadBytes = 0;
        aad = aadBytesOf(i, true);
      }
      dataBytes += data;
      aadBytes += aad;
    }
    if (count > start) call(start, count, dataBytes, aadBytes);
  }

  /** Reserves the arena and refreshes the views (growing memory detaches the old buffer). */
  private reserve(bytes: number): number {
    if (bytes > 0xffff_ffff) throw new RangeError(`a batch call needs ${bytes} bytes, more than wasm32 can address`);
    const base = this.core.reserve(bytes);
    if (base === 0) throw new RangeError(`cannot grow the crypto core's memory to ${bytes} bytes`);
    const buffer = this.core.memory.buffer;
    if (buffer !== this.buffer) {
      this.buffer = buffer;
      this.u8 = new Uint8Array(buffer);
      this.u32 = new Uint32Array(buffer);
    }
    return base;
  }

  private sealCall(
    items: readonly SealItem[], start: number, end: number, dataBytes: number, aadBytes: number,
    results: Uint8Array[],
  ): void {
    const count = end - start;
    const { desc, dataStart } = this.callArena(count, dataBytes, aadBytes);
    const { u8, u32, regions } = this;
    let sealed = false;
    try {
      let data = dataStart;
      let aad = dataStart + dataBytes;
      for (let i = start, d = desc; i < end; i++, d += DESC_SIZE) {
        const item = items[i];
        const prefix = item.prefix;
        const prefixLength = prefix === undefined ? 0 : prefix.length;
        if (prefixLength > 0) u8.set(prefix!, data);
        const text = item.plaintext;
        const textAt = data + prefixLength;
        writeDescriptor(u8, u32, d, item.key, item.nonce, aad, item.aad.length, textAt, text.length);
        if (item.aad.length > 0) u8.set(item.aad, aad);
        if (text.length > 0) u8.set(text, textAt);
        aad += item.aad.length;
        regions[i - start] = prefixLength + text.length + TAG_BYTES;
        data += regions[i - start];
      }
      this.core.sealBatch(desc, count);
      this.copyOut(dataStart, count, (buffer, offset, first, last) => {
        for (let k = first; k < last; offset += regions[k++]) results[start + k] = new Uint8Array(buffer, offset, regions[k]);
      });
      sealed = true;
    } finally {
      // The aad holds subject ids (personal data): do not leave it in the reused arena.
      u8.fill(0, dataStart + dataBytes, dataStart + dataBytes + aadBytes);
      if (!sealed) u8.fill(0, desc, dataStart + dataBytes); // keys and plaintexts the module may not have reached
    }
  }

  /**
   * Reserves the arena of one call, [ descriptors ][ data ][ associated data ], and room for `count`
   * regions; the views (u8, u32, regions) are current afterwards.
   */
  private callArena(count: number, dataBytes: number, aadBytes: number): { desc: number; dataStart: number; aadBase: number } {
    const desc = this.reserve(count * DESC_SIZE + dataBytes + aadBytes);
    const dataStart = desc + count * DESC_SIZE;
    this.regionsFor(count);
    return { desc, dataStart, aadBase: dataStart + dataBytes };
  }

  /** The calls of an envelope batch (see ENVELOPE_CALL_BYTES); `nonceBytes`: arena bytes per item for its nonce. */
  private envelopeCalls(count: number, dataBytesOf: (k: number) => number, aadBytesOf: (k: number, first: boolean) => number, nonceBytes: number): EnvelopeCall[] {
    const calls: EnvelopeCall[] = [];
    this.inCalls(count, dataBytesOf, aadBytesOf, (start, end, dataBytes, aadBytes) => {
      calls.push({ start, end, dataBytes, aadBytes, nonceBytes: (end - start) * nonceBytes });
    }, ENVELOPE_CALL_BYTES, nonceBytes);
    return calls;
  }

  /**
   * Lays out [ key table ][ one call's arena ], writes the key table once (writeKeys) and makes the
   * calls one after the other in the same region after it; the key table is wiped however they end.
   */
  private withKeyTable(
    calls: readonly EnvelopeCall[], keyCount: number,
    writeKeys: (u8: Uint8Array, keyTable: number) => void,
    run: (keyTable: number, call: EnvelopeCall) => void,
  ): void {
    let largest = 0, most = 0;
    for (const { start, end, dataBytes, aadBytes, nonceBytes } of calls) {
      largest = Math.max(largest, (end - start) * DESC_SIZE + nonceBytes + dataBytes + aadBytes);
      most = Math.max(most, end - start);
    }
    const keyTableBytes = keyCount * KEY_ENTRY;
    const keyTable = this.reserve(keyTableBytes + largest);
    this.regionsFor(most);
    try {
      writeKeys(this.u8, keyTable);
      for (const call of calls) run(keyTable, call);
    } finally {
      this.u8.fill(0, keyTable, keyTable + keyTableBytes);
    }
  }

  /**
   * The arena of an envelope call, after the key table: [ descriptors ][ nonces (sealing) ][ data ][
   * associated data ], with the batch's associated data copied in, in one copy of the span its items
   * use: item k's lies at aadBase + aadStarts[index(k)] - lo.
   */
  private envelopeArena(keyCount: number, aad: Uint8Array, aadStarts: ArrayLike<number>, keyTable: number, call: EnvelopeCall, index = (k: number) => k) {
    const { start, end, dataBytes, aadBytes, nonceBytes } = call;
    const desc = keyTable + keyCount * KEY_ENTRY;
    const nonces = desc + (end - start) * DESC_SIZE;
    const dataStart = nonces + nonceBytes;
    const aadBase = dataStart + dataBytes;
    const lo = aadStarts[index(start)];
    const hi = lo + aadBytes; // (items lie in the arena in order: see arenaBytes)
    // (a call that covers the whole arena needs no subarray view)
    this.u8.set(lo === 0 && hi === aad.length ? aad : aad.subarray(lo, hi), aadBase);
    return { desc, nonces, dataStart, aadBase, lo };
  }

  private sealEnvelopeCall(batch: EnvelopeSealBatch, keyTable: number, call: EnvelopeCall, results: Buffer[]): void {
    const { keyIndexes, plaintexts, aadStarts, aadLengths, prefixBytes } = batch;
    const { start, end, dataBytes, aadBytes } = call;
    const headerBytes = prefixBytes + NONCE_BYTES;
    const count = end - start;
    const { desc, nonces, dataStart, aadBase, lo } = this.envelopeArena(batch.keys.length, batch.aad, aadStarts, keyTable, call);
    const { u8, u32, regions } = this;
    let sealed = false;
    try {
      this.nonces.fill(u8, nonces, call.nonceBytes);
      let data = dataStart;
      for (let i = start, d = desc; i < end; i++, d += DESC_SIZE) {
        const text = plaintexts[i];
        const textAt = data + headerBytes;
        if (text.length > 0) u8.set(text, textAt);
        writeEnvelopeDescriptor(u32, d, keyIndexes[i], aadBase + aadStarts[i] - lo, aadLengths[i], textAt, text.length);
        regions[i - start] = headerBytes + text.length + TAG_BYTES;
        data += regions[i - start];
      }
      this.core.sealEnvelopes(desc, count, keyTable, nonces, prefixBytes);
      this.copyOut(dataStart, count, (buffer, offset, first, last) => {
        for (let k = first; k < last; offset += regions[k++]) results[start + k] = Buffer.from(buffer, offset, regions[k]);
      });
      sealed = true;
    } finally {
      u8.fill(0, aadBase, aadBase + aadBytes); // subject ids
      if (!sealed) u8.fill(0, desc, dataStart + dataBytes); // plaintexts the module may not have reached
    }
  }

  private openEnvelopeCall(batch: EnvelopeOpenBatch, index: (k: number) => number, keyTable: number, call: EnvelopeCall, results: (Buffer | null)[]): void {
    const { keyIndexes, envelopes, aadStarts, aadLengths, prefixBytes } = batch;
    const { start, end, aadBytes } = call;
    const headerBytes = prefixBytes + NONCE_BYTES;
    const count = end - start;
    const { desc, aadBase, dataStart, lo } = this.envelopeArena(batch.keys.length, batch.aad, aadStarts, keyTable, call, index);
    const { u8, u32, regions } = this;
    try {
      let data = dataStart;
      for (let k = start, d = desc; k < end; k++, d += DESC_SIZE) {
        const i = index(k);
        const envelope = envelopes[i];
        u8.set(envelope, data);
        writeEnvelopeDescriptor(u32, d, keyIndexes[i], aadBase + aadStarts[i] - lo, aadLengths[i], data + headerBytes, envelope.length - headerBytes - TAG_BYTES);
        regions[k - start] = envelope.length;
        data += envelope.length;
      }
      this.core.openEnvelopes(desc, count, keyTable, prefixBytes);
      this.copyOutAuthentic(desc, dataStart, count, (k, buffer, offset) => {
        results[index(start + k)] = Buffer.from(buffer, offset + headerBytes, regions[k] - headerBytes - TAG_BYTES);
      });
    } finally {
      u8.fill(0, desc, aadBase + aadBytes); // plaintexts and subject ids
    }
  }

  private regionsFor(count: number): void {
    if (this.regions.length < count) this.regions = new Uint32Array(count);
  }

  /** copyOut after an open call: only the items whose status says they authenticated are emitted. */
  private copyOutAuthentic(desc: number, from: number, count: number, emit: (k: number, buffer: ArrayBuffer, offset: number) => void): void {
    const status = (desc >>> 2) + 15; // u32 index of item 0's status word (byte 60)
    const { u32, regions } = this;
    this.copyOut(from, count, (buffer, offset, first, last) => {
      for (let k = first; k < last; offset += regions[k++]) if (u32[status + k * (DESC_SIZE >>> 2)] === STATUS_OK) emit(k, buffer, offset);
    });
  }

  /**
   * Copies the regions of `count` items from `from` out of wasm memory, a slice per ~OUT_CHUNK bytes:
   * items first..last-1 of a slice lie in `buffer` from `offset` on, one after the other. (A call per
   * slice, not per item: the caller's own loop makes each item's view.)
   */
  private copyOut(from: number, count: number, emitSlice: (buffer: ArrayBuffer, offset: number, first: number, last: number) => void): void {
    const { u8, regions } = this;
    for (let first = 0; first < count;) {
      let last = first, bytes = 0;
      do bytes += regions[last++]; while (last < count && bytes < OUT_CHUNK);
      const out = this.results.copy(u8, from, bytes);
      emitSlice(out.buffer as ArrayBuffer, out.byteOffset, first, last);
      from += bytes;
      first = last;
    }
  }

  private openCall(
    items: readonly OpenItem[], indexes: readonly number[] | null, start: number, end: number,
    dataBytes: number, aadBytes: number, results: (Uint8Array | null)[],
  ): void {
    const count = end - start;
    const { desc, dataStart } = this.callArena(count, dataBytes, aadBytes);
    const { u8, u32, regions } = this;
    try {
      let data = dataStart;
      let aad = dataStart + dataBytes;
      for (let i = start, d = desc; i < end; i++, d += DESC_SIZE) {
        const item = items[i];
        const sealed = item.sealed;
        writeDescriptor(u8, u32, d, item.key, item.nonce, aad, item.aad.length, data, sealed.length - TAG_BYTES);
        if (item.aad.length > 0) u8.set(item.aad, aad);
        u8.set(sealed, data);
        aad += item.aad.length;
        regions[i - start] = sealed.length;
        data += sealed.length;
      }
      this.core.openBatch(desc, count);
      this.copyOutAuthentic(desc, dataStart, count, (k, buffer, offset) => {
        results[indexes === null ? start + k : indexes[start + k]] = new Uint8Array(buffer, offset, regions[k] - TAG_BYTES);
      });
    } finally {
      // Neither keys (if the module did not run), plaintext nor aad (subject ids) may linger in the reused arena.
      u8.fill(0, desc, dataStart + dataBytes + aadBytes);
    }
  }
}

/**
 * The indexes of the items for which `wellFormed` holds, or null when it holds for all (the usual
 * case: no list is built). `wellFormed` is called once for every item, in order (it may throw).
 */
function wellFormedIndexes(count: number, wellFormed: (i: number) => boolean): number[] | null {
  let indexes: number[] | null = null;
  for (let i = 0; i < count; i++) {
    const ok = wellFormed(i);
    if (indexes === null) {
      if (!ok) indexes = Array.from({ length: i }, (_, j) => j); // the first malformed item: list the others from here on
    } else if (ok) {
      indexes.push(i);
    }
  }
  return indexes;
}

/**
 * Where results are copied out of wasm memory: copies under half a slab are packed into a shared 64 KiB
 * slab, filled in order and never rewritten (Node's Buffer pool does the same at 8 KiB). A new
 * ArrayBuffer costs as much as sealing a few records, which every small batch (low rates) would
 * otherwise pay; larger copies get their own.
 */
class ResultSlabs {
  private slab = new Uint8Array(0);
  private used = 0;

  constructor(private readonly slabBytes = 64 * 1024) {}

  /** A fresh copy of u8[from, from + bytes), as a view. */
  copy(u8: Uint8Array, from: number, bytes: number): Uint8Array {
    if (bytes >= this.slabBytes >>> 1) return u8.slice(from, from + bytes);
    if (this.used + bytes > this.slab.length) {
      this.slab = new Uint8Array(this.slabBytes);
      this.used = 0;
    }
    const at = this.used;
    this.slab.set(u8.subarray(from, from + bytes), at);
    this.used = at + bytes;
    return this.slab.subarray(at, at + bytes);
  }
}

function sealItemBytes(item: SealItem): number {
  return (item.prefix?.length ?? 0) + item.plaintext.length + TAG_BYTES;
}

/**
 * What each item of an envelope batch adds to its call's associated data: the arena from the end of
 * the previous item's (or the item's own start, when it opens the call) to the end of its own. Items
 * lie in the arena in order (checked), so a call copies one span and the limit counts any gaps too.
 */
function arenaBytes(batch: { aadStarts: ArrayLike<number>; aadLengths: ArrayLike<number> }, index = (k: number) => k): (k: number, first: boolean) => number {
  const { aadStarts, aadLengths } = batch;
  const end = (i: number) => aadStarts[i] + aadLengths[i];
  return (k, first) => (first ? aadLengths[index(k)] : end(index(k)) - end(index(k - 1)));
}

function writeDescriptor(
  u8: Uint8Array, u32: Uint32Array, d: number, key: Uint8Array, nonce: Uint8Array,
  aad: number, aadLength: number, text: number, textLength: number,
): void {
  u8.set(key, d);
  u8.set(nonce, d + 32);
  writePointers(u32, d, aad, aadLength, text, textLength);
}

/** An envelope item's descriptor on input (see assembly/envelopes.ts): its key's index where the key goes. */
function writeEnvelopeDescriptor(u32: Uint32Array, d: number, keyIndex: number, aad: number, aadLength: number, text: number, textLength: number): void {
  u32[d >>> 2] = keyIndex;
  writePointers(u32, d, aad, aadLength, text, textLength);
}

/** Descriptor bytes 44-59: where the item's associated data and text lie in the module's memory. */
function writePointers(u32: Uint32Array, d: number, aad: number, aadLength: number, text: number, textLength: number): void {
  const w = d >>> 2;
  u32[w + 11] = aad;
  u32[w + 12] = aadLength;
  u32[w + 13] = text;
  u32[w + 14] = textLength;
}

/** Instantiates the WebAssembly core (the module itself is compiled once per process). */
export function loadCryptoCore(): Promise<CryptoCore> {
  return loadPackedSealer();
}

/** An instance of the core with its packed-batch entry, for the sealing thread. */
export async function loadPackedSealer(): Promise<PackedSealer> {
  const core = await instantiateCore();
  checkArenaLayout(core);
  return new WasmCryptoCore(core);
}
