// What the encryptor writes for an input record, whichever way its batch is sealed, and for a key record.
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { KeyRecord } from '../keys/partition-keys.js';
import { recordBytes } from '../kafka/transactions.js';
import { ENVELOPE_OVERHEAD } from '../wire/envelope.js';
import { FORGOTTEN_AT_HEADER } from '../wire/headers.js';

/** Bytes a record takes in a record batch beyond its key, value and headers (batch header, varints). */
export const RECORD_BATCH_OVERHEAD = 100;

/** The output record of an input record: same key, partition, timestamp and headers. */
export function outputRecord(message: KafkaMessage, partition: number, value: Buffer | null): Message {
  return { key: message.key, value, partition, timestamp: message.timestamp, headers: message.headers as IHeaders };
}

/** Bytes the output topic is asked to take for a record whose whole value is sealed (see maxRecordBytes). */
export const sealedRecordBytes = (message: KafkaMessage): number => recordBytes(message as Message) + ENVELOPE_OVERHEAD + RECORD_BATCH_OVERHEAD;

/** The dead-letter reason of a record its output topic cannot take once encrypted. */
export const tooLargeReason = (outputBytes: number, maxRecordBytes: number) =>
  `record too large once encrypted: ${outputBytes} bytes, the output topic takes ${maxRecordBytes} (max.message.bytes)`;

/** kafkajs writes Buffers only: a Buffer as it is (no copy: nothing changes it), other bytes copied into one. */
const asKafkaBytes = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));

/** A key record (new key, tombstone) as the keys topic's partition `partition` takes it. */
export function keyRecordMessage(record: KeyRecord, partition: number): Message {
  return {
    key: asKafkaBytes(record.subject),
    value: record.value ? asKafkaBytes(record.value) : null,
    partition,
    timestamp: String(record.timestamp),
    headers: record.forgottenAt !== undefined ? { [FORGOTTEN_AT_HEADER]: String(record.forgottenAt) } : undefined,
  };
}
