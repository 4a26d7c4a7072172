// The record batch compressions of Java producers that kafkajs lacks (it has gzip only): snappy, lz4
// and zstd, registered in kafkajs's codec registry when this module is evaluated. Without them a
// batch compressed so fails every fetch that returns it ("ZSTD compression not implemented"), and
// the processor crashes on it again at each restart: a poison pill. The CLI, the library entry and
// the test hooks import this module, so every entry point has them.
import kafkajs, { CompressionTypes } from 'kafkajs';
import snappyCodec from 'kafkajs-snappy';
import lz4js from 'lz4js';
import { decompress as zstdDecompress } from 'fzstd';
import zstdWasm from '@bokuweb/zstd-wasm';
import type { CompressionName } from '../config/config.js';
import { bufferView } from '../wire/buffer-view.js';

// (Node finds no named export CompressionCodecs in kafkajs's CommonJS exports: take it from the whole)
const { CompressionCodecs } = kafkajs;

/** kafkajs's codec interface (see kafkajs/src/protocol/message/compression/gzip.js). */
export interface Codec {
  /** The encoder's buffer holds the record batch's records. */
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  /** kafkajs decodes the records from the result with Buffer methods: a Buffer, never a plain Uint8Array. */
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** A Buffer over the bytes of `bytes`, not a copy. */

// LZ4 frames as Kafka's own Lz4BlockOutputStream writes them: 64 KiB independent blocks, no
// checksums. lz4js is used for decoding only: its frames do not set the block-independence flag,
// which Kafka requires ("Dependent block stream is unsupported": the produce would fail), and its
// block compressor can start the last match 10 or 11 bytes before a block's end, which breaks the
// format's rule (12) and which lz4's own decoder, Java's among them, refuses in a full 64 KiB block.
const LZ4_HEADER = Buffer.from([
  0x04, 0x22, 0x4d, 0x18, // magic
  0x60, // FLG: version 01, block independence
  0x40, // BD: 64 KiB blocks
  0x82, // HC: second byte of xxh32(FLG, BD)
]);
const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_BYTES = 64 * 1024;
const LZ4_UNCOMPRESSED = 0x80000000;
const LZ4_MIN_MATCH = 4;
/** The last 5 bytes of a block are literals, and its last match starts at least 12 bytes before its end. */
const LZ4_LAST_LITERALS = 5;
const LZ4_MATCH_START_LIMIT = 12;
const LZ4_HASH_BITS = 16;

/** Writes the rest of a length over 15 (the token holds 15): bytes of 255, then what remains. */
function lz4Length(dst: Buffer, at: number, rest: number): number {
  for (; rest >= 255; rest -= 255) dst[at++] = 255;
  dst[at++] = rest;
  return at;
}

/** A sequence's token (with `matchNibble`) and its literals src[from, from + count). */
function lz4Literals(src: Uint8Array, from: number, count: number, matchNibble: number, dst: Buffer, at: number): number {
  dst[at++] = (Math.min(count, 15) << 4) | matchNibble;
  if (count >= 15) at = lz4Length(dst, at, count - 15);
  dst.set(src.subarray(from, from + count), at);
  return at + count;
}

/**
 * Compresses src[from, end) into one LZ4 block at dst[at] and returns the index after it: greedy
 * matching on a hash of 4 bytes, as lz4's fast mode, skipping faster through bytes that do not match.
 */
function lz4Block(src: Uint8Array, from: number, end: number, dst: Buffer, at: number, table: Int32Array): number {
  const view = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  table.fill(-1); // matches only within the block: independent blocks
  const startLimit = end - LZ4_MATCH_START_LIMIT;
  const matchEnd = end - LZ4_LAST_LITERALS;
  let anchor = from;
  let misses = 0;
  for (let i = from; i <= startLimit;) {
    const word = view.readUInt32LE(i);
    const hash = Math.imul(word, 2654435761) >>> (32 - LZ4_HASH_BITS);
    const candidate = table[hash];
    table[hash] = i;
    if (candidate < 0 || i - candidate > 65535 || view.readUInt32LE(candidate) !== word) {
      i += 1 + (misses++ >> 6);
      continue;
    }
    misses = 0;
    let length = LZ4_MIN_MATCH;
    while (i + length < matchEnd && src[i + length] === src[candidate + length]) length++;
    const rest = length - LZ4_MIN_MATCH;
    at = lz4Literals(src, anchor, i - anchor, Math.min(rest, 15), dst, at);
    const offset = i - candidate;
    dst[at++] = offset & 0xff;
    dst[at++] = offset >> 8;
    if (rest >= 15) at = lz4Length(dst, at, rest - 15);
    i += length;
    anchor = i;
  }
  return lz4Literals(src, anchor, end - anchor, 0, dst, at);
}

function lz4Frame(input: Uint8Array): Buffer {
  const blocks = Math.ceil(input.length / LZ4_BLOCK_BYTES);
  // room for each block's worst case: its bytes, a length byte per 255 of them, a token
  const frame = Buffer.allocUnsafe(LZ4_HEADER.length + blocks * (4 + LZ4_BLOCK_BYTES + LZ4_BLOCK_BYTES / 255 + 16) + 4);
  LZ4_HEADER.copy(frame);
  let at = LZ4_HEADER.length;
  const table = new Int32Array(1 << LZ4_HASH_BITS);
  for (let from = 0; from < input.length; from += LZ4_BLOCK_BYTES) {
    const length = Math.min(LZ4_BLOCK_BYTES, input.length - from);
    const size = lz4Block(input, from, from + length, frame, at + 4, table) - (at + 4);
    if (size < length) {
      frame.writeUInt32LE(size, at);
      at += 4 + size;
    } else { // (it did not shrink: stored as it is)
      frame.writeUInt32LE((LZ4_UNCOMPRESSED | length) >>> 0, at);
      frame.set(input.subarray(from, from + length), at + 4);
      at += 4 + length;
    }
  }
  frame.writeUInt32LE(0, at); // end mark
  return frame.subarray(0, at + 4);
}

/**
 * The bytes of LZ4 frames (one after the other), of any settings: Kafka's, librdkafka's, the lz4
 * command's (dependent blocks, block sizes to 4 MiB, content size, checksums, which are not
 * verified: a record batch has its CRC). lz4js.decompress is not used: it reads a block checksum as
 * if it came before the block, not after.
 */
function lz4Unframe(input: Buffer): Buffer {
  const frames: { blocks: [at: number, size: number, stored: boolean][]; bound: number }[] = [];
  let bound = 0;
  for (let at = 0; at < input.length;) {
    const magic = input.readUInt32LE(at);
    if ((magic & 0xfffffff0) === 0x184d2a50) { // a skippable frame
      at += 8 + input.readUInt32LE(at + 4);
      continue;
    }
    if (magic !== LZ4_MAGIC) throw new Error(`LZ4: not a frame (magic number 0x${magic.toString(16)})`);
    const flg = input[at + 4];
    if (flg >> 6 !== 1) throw new Error(`LZ4: unsupported frame version ${flg >> 6}`);
    const blockChecksums = (flg & 0x10) !== 0;
    const maxBlock = 1 << (8 + 2 * ((input[at + 5] >> 4) & 7)); // BD 4..7: 64 KiB..4 MiB
    at += 7 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0); // magic, FLG, BD, [content size], [dictionary id], HC
    const frame: (typeof frames)[number] = { blocks: [], bound: 0 };
    for (;;) {
      const word = input.readUInt32LE(at);
      at += 4;
      if (word === 0) break; // end mark
      const size = word & 0x7fffffff, stored = word !== size;
      if (at + size > input.length) throw new Error('LZ4: truncated frame');
      frame.blocks.push([at, size, stored]);
      frame.bound += stored ? size : maxBlock;
      at += size + (blockChecksums ? 4 : 0);
    }
    at += flg & 0x04 ? 4 : 0; // content checksum
    frames.push(frame);
    bound += frame.bound;
  }
  const output = Buffer.allocUnsafe(bound);
  let written = 0;
  for (const { blocks } of frames) {
    for (const [at, size, stored] of blocks) {
      if (stored) written += input.copy(output, written, at, at + size);
      else written = lz4js.decompressBlock(input, output, at, size, written);
      if (written > bound) throw new Error('LZ4: corrupt block');
    }
  }
  return output.subarray(0, written);
}

const lz4Codec: Codec = {
  async compress(encoder) {
    return lz4Frame(encoder.buffer);
  },
  async decompress(buffer) {
    return lz4Unframe(buffer);
  },
};

// zstd: fzstd decompresses (the frames of Java's zstd-jni stream have no content size, which
// zstd-wasm's own decompress cannot handle); zstd-wasm compresses, at zstd's (and Kafka's) default
// level 3, once its WebAssembly module is loaded (at the first compressed batch).
let zstdReady: Promise<void> | undefined;
const zstdCodec: Codec = {
  async compress(encoder) {
    await (zstdReady ??= zstdWasm.init());
    return bufferView(zstdWasm.compress(encoder.buffer, 3));
  },
  async decompress(buffer) {
    return bufferView(zstdDecompress(buffer));
  },
};

/**
 * Puts `codec` in kafkajs's registry unless an application has put its own there (a native binding,
 * say): the library must not replace it. kafkajs's placeholder throws "... not implemented".
 */
function register(type: CompressionTypes.Snappy | CompressionTypes.LZ4 | CompressionTypes.ZSTD, codec: Codec): void {
  try {
    CompressionCodecs[type]();
    return;
  } catch {
    CompressionCodecs[type] = () => codec;
  }
}

// kafkajs-snappy reads both the xerial framing that Java's snappy-java writes and raw snappy, and
// writes raw snappy (which snappy-java reads too).
register(CompressionTypes.Snappy, snappyCodec());
register(CompressionTypes.LZ4, lz4Codec);
register(CompressionTypes.ZSTD, zstdCodec);

const TYPES: Record<CompressionName, CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/** The kafkajs compression type of a `KAFKA_COMPRESSION` name. */
export function compressionType(name: CompressionName): CompressionTypes {
  return TYPES[name];
}
