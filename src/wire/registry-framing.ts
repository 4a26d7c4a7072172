// The Confluent Schema Registry wire format, which every registry serializer writes (Confluent's,
// Apicurio's in its Confluent mode, @kafkajs/confluent-schema-registry):
//
//   0  1  magic byte 0x00
//   1  4  schema id, big-endian (a Java int: 0 to 2^31-1)
//   5  n  Avro: the Avro binary; JSON Schema: the JSON text; Protobuf: the message indexes, then the message
//
// Protobuf's message indexes locate the message type in the schema's .proto file (the first top-level
// message is [0]; the second message nested in the third top-level one is [2, 1]): a count, then each
// index, all zigzag varints (Kafka's ByteUtils.writeVarint). The common [0] is written as a single 0x00
// (a count of 0). Readers also take the long form of [0] (count 1, index 0), and so do we; a parsed
// frame keeps its header's bytes, so writing it back with `frame.header` is byte for byte what came in.
//
// Every malformed frame is a RecordError whose reason names what is wrong, never a byte of the content.
import { RecordError } from '../errors/shredder-errors.js';
import { bufferView } from './buffer-view.js';

export const REGISTRY_MAGIC_BYTE = 0x00;
/** Magic byte and schema id. */
export const REGISTRY_HEADER_BYTES = 5;
const MAX_SCHEMA_ID = 0x7fffffff;

/** Why a value is not a readable registry frame; the text goes into `shredder.error`. */
export class RegistryFrameError extends RecordError {
  override readonly name: string = 'RegistryFrameError';
}

export interface RegistryFrame {
  schemaId: number;
  /** Everything before the payload (magic byte, schema id, and for Protobuf the message indexes), as read. */
  header: Buffer;
  /** The serialized record under the schema: a view into the value, not a copy. */
  payload: Buffer;
}

export interface ProtobufRegistryFrame extends RegistryFrame {
  /** The message type's path in the .proto file: [0] is its first top-level message. */
  messageIndexes: number[];
}

/** Reads magic byte and schema id: an Avro or JSON Schema frame (for Protobuf, `parseProtobufFrame`). */
export function parseRegistryFrame(value: Uint8Array): RegistryFrame {
  const bytes = bufferView(value);
  if (bytes.length === 0) throw new RegistryFrameError('empty value: not a schema registry frame (magic byte, 4-byte schema id, payload)');
  if (bytes[0] !== REGISTRY_MAGIC_BYTE) throw new RegistryFrameError('value does not start with the schema registry magic byte 0x00');
  if (bytes.length < REGISTRY_HEADER_BYTES) {
    throw new RegistryFrameError(`schema registry frame of ${bytes.length} bytes ends inside its 4-byte schema id`);
  }
  const schemaId = bytes.readUInt32BE(1);
  if (schemaId > MAX_SCHEMA_ID) throw new RegistryFrameError('schema registry frame has a schema id above 2^31-1 (negative as a Java int)');
  return { schemaId, header: bytes.subarray(0, REGISTRY_HEADER_BYTES), payload: bytes.subarray(REGISTRY_HEADER_BYTES) };
}

/** Reads magic byte, schema id and the Protobuf message indexes. */
export function parseProtobufFrame(value: Uint8Array): ProtobufRegistryFrame {
  const frame = parseRegistryFrame(value);
  const bytes = bufferView(value);
  let at = REGISTRY_HEADER_BYTES;
  if (at === bytes.length) throw new RegistryFrameError('Protobuf schema registry frame ends before its message indexes');
  const count = readZigzagVarint(bytes, at, 'message index count');
  at = count.next;
  const messageIndexes: number[] = [];
  if (count.value === 0) {
    messageIndexes.push(0); // (the single-byte shortcut for [0])
  } else {
    if (count.value < 0) throw new RegistryFrameError(`Protobuf schema registry frame has a negative message index count (${count.value})`);
    // Each index takes a byte at least: a count past the end is malformed, not a reason to allocate.
    if (count.value > bytes.length - at) {
      throw new RegistryFrameError(`Protobuf schema registry frame has ${count.value} message indexes but ${bytes.length - at} bytes after the count`);
    }
    for (let i = 0; i < count.value; i++) {
      const index = readZigzagVarint(bytes, at, `message index ${i + 1} of ${count.value}`);
      if (index.value < 0) throw new RegistryFrameError(`Protobuf schema registry frame has a negative message index (${index.value})`);
      messageIndexes.push(index.value);
      at = index.next;
    }
  }
  return { schemaId: frame.schemaId, messageIndexes, header: bytes.subarray(0, at), payload: bytes.subarray(at) };
}

/** Magic byte, schema id, payload: an Avro or JSON Schema frame. */
export function encodeRegistryFrame(schemaId: number, payload: Uint8Array): Buffer {
  return Buffer.concat([registryHeader(schemaId), payload]);
}

/** Magic byte, schema id, message indexes (the 0x00 shortcut for [0], as Confluent's serializer writes), payload. */
export function encodeProtobufFrame(schemaId: number, messageIndexes: readonly number[], payload: Uint8Array): Buffer {
  if (messageIndexes.length === 0) throw new RangeError('a Protobuf frame needs at least one message index');
  const indexes = messageIndexes.length === 1 && messageIndexes[0] === 0 ? [0] : [messageIndexes.length, ...messageIndexes];
  const varints: number[] = [];
  for (const value of indexes) {
    if (!Number.isInteger(value) || value < 0 || value > MAX_SCHEMA_ID) throw new RangeError(`message index ${value} is not an integer from 0 to 2^31-1`);
    writeZigzagVarint(value, varints);
  }
  return Buffer.concat([registryHeader(schemaId), Buffer.from(varints), payload]);
}

/** A parsed frame with another payload, its header kept byte for byte. */
export function reframe(frame: RegistryFrame, payload: Uint8Array): Buffer {
  return Buffer.concat([frame.header, payload]);
}

function registryHeader(schemaId: number): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > MAX_SCHEMA_ID) throw new RangeError(`schema id ${schemaId} is not an integer from 0 to 2^31-1`);
  const header = Buffer.alloc(REGISTRY_HEADER_BYTES);
  header[0] = REGISTRY_MAGIC_BYTE;
  header.writeUInt32BE(schemaId, 1);
  return header;
}

/** A zigzag varint of at most 32 bits (5 bytes), as Kafka's ByteUtils.readVarint reads it. */
function readZigzagVarint(bytes: Buffer, start: number, what: string): { value: number; next: number } {
  let raw = 0;
  for (let i = 0; i < 5; i++) {
    if (start + i >= bytes.length) throw new RegistryFrameError(`Protobuf schema registry frame ends inside its ${what}`);
    const byte = bytes[start + i];
    if (i === 4 && byte & 0x80) throw new RegistryFrameError(`Protobuf schema registry frame has a ${what} longer than 5 bytes`);
    // (the 5th byte carries bits 28-31 only; more would not fit the 32 bits Java reads)
    if (i === 4 && byte > 0x0f) throw new RegistryFrameError(`Protobuf schema registry frame has a ${what} wider than 32 bits`);
    raw += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) {
      // zigzag: 0, -1, 1, -2, ... are 0, 1, 2, 3, ... (arithmetic, not bitwise: raw may exceed 2^31)
      const value = raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
      return { value, next: start + i + 1 };
    }
  }
  throw new Error('unreachable: the 5th byte ends every varint above');
}

function writeZigzagVarint(value: number, out: number[]): void {
  let raw = value >= 0 ? value * 2 : -value * 2 - 1;
  while (raw >= 0x80) {
    out.push((raw % 0x80) | 0x80);
    raw = Math.floor(raw / 0x80);
  }
  out.push(raw);
}
