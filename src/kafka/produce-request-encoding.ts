// kafkajs 2.2.4 encodes a Produce request through an Encoder per partition, per topic and for the
// request, each starting at 512 zeroed bytes and doubling as it grows, copying every record batch into
// each in turn, after copying each message into a new object and sorting its partition's timestamps as
// strings; then it frames the request (header and size) with two Encoders more. This module puts an
// encoder of the same bytes in kafkajs's place: each uncompressed record batch is built once in a
// buffer of its size (record-batch-encoding.ts, records by record-encoding.ts), the Produce request is
// written in one buffer of its size, and every request is framed with one copy. A compressed Produce
// request is left to kafkajs's own encoder. Like linear-grouping.ts it must be evaluated before kafkajs
// loads its network code (the CLI, the benchmarks and the test hooks import it first; the library entry
// does not); loaded too late, or with another kafkajs layout, it changes nothing.
import { createRequire } from 'node:module';

import { encodeRecordBatch, recordBatchEncodingInstalled } from './record-batch-encoding.js';
import { encodeRecord, type RecordFields } from './record-encoding.js';

interface ProduceMessage extends RecordFields {
  timestamp?: string | number | null;
}

interface PartitionData {
  partition: number;
  firstSequence?: number;
  messages: ProduceMessage[];
}

/** What kafkajs's producer passes its Produce request (versions 3 to 7 share it). */
export interface ProduceRequestFields {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: { topic: string; partitions: PartitionData[] }[];
}

interface Encoded {
  buf: Buffer;
  buffer: Buffer;
  size(): number;
}

interface ProtocolRequest {
  apiKey: number;
  apiVersion: number;
  apiName: string;
  expectResponse: () => boolean;
  encode: () => Promise<{ buffer: Buffer }>;
}

const require = createRequire(import.meta.url);
const PRODUCE_API_KEY = 0;

const encoded = (buf: Buffer): Encoded => ({ buf, buffer: buf, size: () => buf.length });
const stringBytes = (value: string | null | undefined): number => (value == null ? 2 : 2 + Buffer.byteLength(value, 'utf8'));

function writeString(buf: Buffer, at: number, value: string | null | undefined): number {
  if (value == null) return buf.writeInt16BE(-1, at);
  const length = buf.write(value, at + 2, 'utf8');
  buf.writeInt16BE(length, at);
  return at + 2 + length;
}

const PRODUCE_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';
/** kafkajs's own Produce request: kept aside when this one is installed, else still in its module. */
let kafkajsProduceRequest: ((fields: ProduceRequestFields) => ProtocolRequest) | undefined;
const ownProduceRequest = () => kafkajsProduceRequest ?? (require(PRODUCE_MODULE) as (fields: ProduceRequestFields) => ProtocolRequest);

/**
 * One partition's record batch, as kafkajs's Produce request v3 makes it: timestamps ordered as kafkajs
 * orders them (Array.prototype.sort, as strings), each record's timestamp delta from the first.
 */
async function partitionBatch({ partition, messages, firstSequence }: PartitionData, fields: ProduceRequestFields): Promise<{ partition: number; batch: Buffer }> {
  const dateNow = Date.now();
  let first: string | number | undefined;
  let max: string | number | undefined;
  for (const { timestamp } of messages) {
    if (timestamp == null) continue;
    if (first === undefined || String(timestamp) < String(first)) first = timestamp;
    if (max === undefined || String(timestamp) >= String(max)) max = timestamp;
  }
  const firstTimestamp = first ?? dateNow;
  const maxTimestamp = max ?? dateNow;
  const records = new Array<{ buffer: Buffer }>(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const { key, value, headers, timestamp } = messages[i];
    // (kafkajs's own arithmetic: a string timestamp minus another is a number)
    const timestampDelta = ((timestamp || dateNow) as number) - (firstTimestamp as number);
    records[i] = encodeRecord({ key, value, headers, offsetDelta: i, timestampDelta });
  }
  const batch = await encodeRecordBatch({
    compression: 0,
    records,
    firstTimestamp,
    maxTimestamp,
    producerId: fields.producerId, // (absent: -1 and 0, kafkajs's defaults, which the batch builder shares)
    producerEpoch: fields.producerEpoch,
    firstSequence,
    transactional: !!fields.transactionalId,
    lastOffsetDelta: records.length - 1,
  });
  return { partition, batch: batch.buffer };
}

/** The Produce request's payload (transactional id, acks, timeout, topics), byte for byte what kafkajs writes, uncompressed. */
export async function encodeProducePayload(fields: ProduceRequestFields): Promise<Encoded> {
  const topics: { topic: string; partitions: { partition: number; batch: Buffer }[] }[] = [];
  let bytes = stringBytes(fields.transactionalId) + 2 + 4 + 4;
  for (const { topic, partitions } of fields.topicData) {
    const encodedPartitions = [];
    bytes += stringBytes(topic) + 4;
    for (const data of partitions) {
      const encodedPartition = await partitionBatch(data, fields);
      bytes += 4 + 4 + encodedPartition.batch.length;
      encodedPartitions.push(encodedPartition);
    }
    topics.push({ topic, partitions: encodedPartitions });
  }
  const buf = Buffer.allocUnsafe(bytes);
  let at = writeString(buf, 0, fields.transactionalId);
  at = buf.writeInt16BE(fields.acks, at);
  at = buf.writeInt32BE(fields.timeout, at);
  at = buf.writeInt32BE(topics.length, at);
  for (const { topic, partitions } of topics) {
    at = writeString(buf, at, topic);
    at = buf.writeInt32BE(partitions.length, at);
    for (const { partition, batch } of partitions) {
      at = buf.writeInt32BE(partition, at);
      at = buf.writeInt32BE(batch.length, at);
      at += batch.copy(buf, at);
    }
  }
  return encoded(buf);
}

/** kafkajs's Produce request v3 (which versions 4 to 7 extend), encoding with encodeProducePayload when uncompressed. */
export function produceRequest(fields: ProduceRequestFields): ProtocolRequest {
  if ((fields.compression ?? 0) !== 0) return ownProduceRequest()(fields);
  return {
    apiKey: PRODUCE_API_KEY,
    apiVersion: 3,
    apiName: 'Produce',
    expectResponse: () => fields.acks !== 0,
    encode: () => encodeProducePayload({ ...fields, transactionalId: fields.transactionalId ?? null }),
  };
}

/** A request framed as kafkajs frames it (size, api key, version, correlation id, client id, payload), in one buffer. */
export async function frameRequest({ correlationId, clientId, request: { apiKey, apiVersion, encode } }: { correlationId: number; clientId: string | null; request: Pick<ProtocolRequest, 'apiKey' | 'apiVersion' | 'encode'> }): Promise<Encoded> {
  const payload = (await encode()).buffer;
  const buf = Buffer.allocUnsafe(4 + 2 + 2 + 4 + stringBytes(clientId) + payload.length);
  let at = buf.writeInt32BE(buf.length - 4, 0);
  at = buf.writeInt16BE(apiKey, at);
  at = buf.writeInt16BE(apiVersion, at);
  at = buf.writeInt32BE(correlationId, at);
  at = writeString(buf, at, clientId);
  payload.copy(buf, at);
  return encoded(buf);
}

let kafkajsFraming: typeof frameRequest | undefined;

function install(): boolean {
  if (!recordBatchEncodingInstalled) return false; // (its builder needs kafkajs's parts it loads)
  try {
    const produceModule = require.resolve(PRODUCE_MODULE);
    const framingModule = require.resolve('kafkajs/src/protocol/request.js');
    // (the producer and the connections take these when they load: once loaded, it is too late)
    if (require.cache[produceModule] !== undefined || require.cache[require.resolve('kafkajs/src/network/connection.js')] !== undefined) return false;
    kafkajsProduceRequest = require(produceModule);
    kafkajsFraming = require(framingModule);
    require.cache[produceModule]!.exports = produceRequest;
    require.cache[framingModule]!.exports = frameRequest;
    return true;
  } catch {
    return false;
  }
}

/** Whether kafkajs encodes Produce requests and frames every request with the functions above. */
export const produceRequestEncodingInstalled = install();

/** kafkajs's own Produce request and framing, for comparing bytes (undefined when not installed). */
export const kafkajsProduceEncoding = () => (kafkajsProduceRequest && kafkajsFraming ? { produceRequest: kafkajsProduceRequest, frameRequest: kafkajsFraming } : undefined);
