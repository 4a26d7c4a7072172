// kafkajs 2.2.4 encodes each record of a produce request through an Encoder that starts with a zeroed
// 512-byte buffer of its own (an ArrayBuffer a record), and writes every varint through an array and a
// Buffer.from: for records of a few hundred bytes, most of the garbage and a large share of the main
// thread of a processor, which writes every record it reads (and a key record for each new subject).
// This module puts an encoder of the same bytes in kafkajs's place: it sizes the record first and
// writes it into one buffer of exactly that size, from Node's shared pool. Like linear-grouping.ts it
// must be evaluated before kafkajs loads its produce request (the CLI, the benchmarks and the test
// hooks import it first; the library entry does not); loaded too late, or with another kafkajs layout,
// it changes nothing.
import { createRequire } from 'node:module';

type Bytes = Buffer | string | null | undefined;

export interface RecordFields {
  offsetDelta?: number;
  timestampDelta?: number | bigint | { toString(): string };
  key?: Bytes;
  value?: Bytes;
  headers?: Record<string, Bytes | Bytes[]>;
}

/** What kafkajs's record batch takes of an encoded record (an Encoder's `buf` and `buffer`). */
export interface EncodedRecord {
  buf: Buffer;
  buffer: Buffer;
}

const zigZag32 = (value: number): number => ((value << 1) ^ (value >> 31)) >>> 0;

function sizeOfUVarInt(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value >>>= 7;
    bytes++;
  }
  return bytes;
}

function writeUVarInt(buf: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    buf[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[at++] = value;
  return at;
}

/** A signed 64-bit value zigzag-encoded, as kafkajs's varlong (wrapping like Java's long). */
function zigZag64(value: RecordFields['timestampDelta']): bigint {
  const v = BigInt.asIntN(64, typeof value === 'bigint' ? value : BigInt(typeof value === 'number' ? (Number.isFinite(value) ? Math.trunc(value) : 0) : String(value ?? 0)));
  return BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
}

function sizeOfUVarLong(value: bigint): number {
  let bytes = 1;
  while (value >= 0x80n) {
    value >>= 7n;
    bytes++;
  }
  return bytes;
}

function writeUVarLong(buf: Buffer, at: number, value: bigint): number {
  while (value >= 0x80n) {
    buf[at++] = Number(value & 0x7fn) | 0x80;
    value >>= 7n;
  }
  buf[at++] = Number(value);
  return at;
}

/** The bytes of a key, value or header: a Buffer as it is, anything else as its UTF-8 text; null: absent. */
const bytesOf = (value: Bytes): Buffer | null => (value == null ? null : Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8'));

/** A varint length (-1: null) and the bytes. */
const sizeOfVarIntBytes = (bytes: Buffer | null): number => (bytes === null ? 1 : sizeOfUVarInt(zigZag32(bytes.length)) + bytes.length);

function writeVarIntBytes(buf: Buffer, at: number, bytes: Buffer | null): number {
  if (bytes === null) return writeUVarInt(buf, at, zigZag32(-1));
  at = writeUVarInt(buf, at, zigZag32(bytes.length));
  bytes.copy(buf, at);
  return at + bytes.length;
}

/**
 * One record (Kafka's record format v2: length, attributes, timestamp delta, offset delta, key, value,
 * headers), byte for byte what kafkajs's record/v0 encoder writes for the records it takes.
 */
export function encodeRecord({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }: RecordFields): EncodedRecord {
  const keyBytes = bytesOf(key);
  const valueBytes = bytesOf(value);
  const timestamp = zigZag64(timestampDelta);
  const offset = zigZag32(offsetDelta);
  const headerBytes: (Buffer | null)[] = [];
  for (const name of Object.keys(headers)) {
    const values = headers[name];
    for (const headerValue of Array.isArray(values) ? values : [values]) headerBytes.push(Buffer.from(name, 'utf8'), bytesOf(headerValue));
  }
  let body = 1 + sizeOfUVarLong(timestamp) + sizeOfUVarInt(offset) + sizeOfVarIntBytes(keyBytes) + sizeOfVarIntBytes(valueBytes);
  body += sizeOfUVarInt(zigZag32(headerBytes.length / 2));
  for (const bytes of headerBytes) body += sizeOfVarIntBytes(bytes);
  const size = sizeOfUVarInt(zigZag32(body)) + body;
  const buf = Buffer.allocUnsafe(size); // (from the pool: a record's bytes live only until its request is encoded)
  let at = writeUVarInt(buf, 0, zigZag32(body));
  buf[at++] = 0; // attributes: none used
  at = writeUVarLong(buf, at, timestamp);
  at = writeUVarInt(buf, at, offset);
  at = writeVarIntBytes(buf, at, keyBytes);
  at = writeVarIntBytes(buf, at, valueBytes);
  at = writeUVarInt(buf, at, zigZag32(headerBytes.length / 2));
  for (const bytes of headerBytes) at = writeVarIntBytes(buf, at, bytes);
  return { buf, buffer: buf };
}

let kafkajsEncoder: ((record: RecordFields) => { buffer: Buffer }) | undefined;

function install(): boolean {
  const require = createRequire(import.meta.url);
  try {
    const recordModule = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/index.js');
    // (the produce request takes the encoder when it loads: once loaded, it is too late)
    if (require.cache[require.resolve('kafkajs/src/protocol/requests/produce/v3/request.js')] !== undefined) return false;
    kafkajsEncoder = require(recordModule);
    require.cache[recordModule]!.exports = encodeRecord;
    return true;
  } catch {
    return false;
  }
}

/** Whether kafkajs encodes its produce requests' records with encodeRecord above. */
export const recordEncodingInstalled = install();

/** kafkajs's own record encoder, for comparing bytes (undefined when not installed). */
export const kafkajsRecordEncoder = () => kafkajsEncoder;
