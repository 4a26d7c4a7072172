// kafkajs 2.2.4 builds each record batch of a produce request through three Encoders, each starting at
// 512 zeroed bytes and doubling as it grows, and copies the records into each in turn: for a batch of
// half a MiB, some 2 MiB of zeroed buffers and three copies of every record, a large share of the
// garbage of a processor that writes every record it reads. This module puts a builder of the same
// bytes in kafkajs's place for uncompressed batches (what the encryptor writes: ciphertext does not
// compress): it sizes the batch from its encoded records and writes it into one buffer. A compressed
// batch is left to kafkajs's own builder. Like linear-grouping.ts it must be evaluated before kafkajs
// loads its produce request (the CLI, the benchmarks and the test hooks import it first; the library
// entry does not); loaded too late, or with another kafkajs layout, it changes nothing.
import { createRequire } from 'node:module';

interface Long {
  getHighBits(): number;
  getLowBits(): number;
}

/** What kafkajs's produce request passes its record batch builder. */
export interface RecordBatchFields {
  compression?: number;
  firstOffset?: unknown;
  firstTimestamp?: unknown;
  maxTimestamp?: unknown;
  partitionLeaderEpoch?: number;
  lastOffsetDelta?: number;
  transactional?: boolean;
  producerId?: unknown;
  producerEpoch?: number;
  firstSequence?: number;
  /** Encoded records (an Encoder's `buffer`, or record-encoding.ts's). */
  records?: { buffer: Buffer }[];
}

/** What the produce request takes of a record batch: an Encoder's `buf`, `buffer` and `size()`. */
export interface EncodedRecordBatch {
  buf: Buffer;
  buffer: Buffer;
  size(): number;
}

type RecordBatchBuilder = (fields: RecordBatchFields) => Promise<{ buffer: Buffer; size(): number }>;

const require = createRequire(import.meta.url);
const MAGIC_BYTE = 2;
const TRANSACTIONAL = 0x10;
const COMPRESSION_CODEC_MASK = 0x07;
/** Bytes of a batch before its records: base offset, length, leader epoch, magic, crc, then the CRC'd header through the record count. */
const HEAD_BYTES = 8 + 4 + 4 + 1 + 4;
const BODY_HEAD_BYTES = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;

const BATCH_MODULE = 'kafkajs/src/protocol/recordBatch/v0/index.js';
const LongClass = require('kafkajs/src/utils/long.js') as { fromValue(value: unknown): Long };
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buffer: Buffer) => number;
/** kafkajs's own builder: kept aside when this one is installed, else still in its module. */
let kafkajsBuilder: RecordBatchBuilder | undefined;
const ownBuilder = (): RecordBatchBuilder => kafkajsBuilder ?? (require(BATCH_MODULE) as { RecordBatch: RecordBatchBuilder }).RecordBatch;

function writeLong(buf: Buffer, at: number, value: unknown): number {
  const long = LongClass.fromValue(value);
  buf.writeInt32BE(long.getHighBits(), at);
  buf.writeInt32BE(long.getLowBits(), at + 4);
  return at + 8;
}

/**
 * One record batch (Kafka's record batch format v2), byte for byte what kafkajs's recordBatch/v0
 * builder writes, with kafkajs's own defaults for what is not given.
 */
export async function encodeRecordBatch(fields: RecordBatchFields): Promise<EncodedRecordBatch | { buffer: Buffer; size(): number }> {
  const compression = (fields.compression ?? 0) & COMPRESSION_CODEC_MASK;
  if (compression !== 0) return ownBuilder()(fields);
  const now = Date.now();
  const records = fields.records ?? [];
  let recordBytes = 0;
  for (const record of records) recordBytes += record.buffer.length;
  const buf = Buffer.allocUnsafe(HEAD_BYTES + BODY_HEAD_BYTES + recordBytes);
  let at = writeLong(buf, 0, fields.firstOffset ?? 0);
  at = buf.writeInt32BE(buf.length - 12, at); // (the length of what follows it)
  at = buf.writeInt32BE(fields.partitionLeaderEpoch ?? 0, at);
  at = buf.writeInt8(MAGIC_BYTE, at);
  const crcAt = at;
  at += 4;
  const bodyAt = at;
  at = buf.writeInt16BE(fields.transactional ? TRANSACTIONAL : 0, at);
  at = buf.writeInt32BE(fields.lastOffsetDelta ?? 0, at);
  at = writeLong(buf, at, fields.firstTimestamp ?? now);
  at = writeLong(buf, at, fields.maxTimestamp ?? now);
  at = writeLong(buf, at, fields.producerId ?? -1);
  at = buf.writeInt16BE(fields.producerEpoch ?? 0, at);
  at = buf.writeInt32BE(fields.firstSequence ?? 0, at);
  at = buf.writeInt32BE(records.length, at);
  for (const record of records) at += record.buffer.copy(buf, at);
  buf.writeUInt32BE(crc32C(buf.subarray(bodyAt)), crcAt);
  return { buf, buffer: buf, size: () => buf.length };
}

function install(): boolean {
  try {
    const batchModule = require.resolve(BATCH_MODULE);
    // (the produce request takes the builder when it loads: once loaded, it is too late)
    if (require.cache[require.resolve('kafkajs/src/protocol/requests/produce/v3/request.js')] !== undefined) return false;
    const exported = require(batchModule) as { RecordBatch: RecordBatchBuilder; MAGIC_BYTE: number };
    kafkajsBuilder = exported.RecordBatch;
    require.cache[batchModule]!.exports = { ...exported, RecordBatch: encodeRecordBatch };
    return true;
  } catch {
    return false;
  }
}

/** Whether kafkajs builds its produce requests' record batches with encodeRecordBatch above. */
export const recordBatchEncodingInstalled = install();

/** kafkajs's own record batch builder, for comparing bytes (undefined when not installed). */
export const kafkajsRecordBatchBuilder = () => kafkajsBuilder;
