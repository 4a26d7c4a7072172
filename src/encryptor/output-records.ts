// What the encryptor writes for an input record, whichever way its batch is sealed, and for a key record.
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { KeyRecord } from '../keys/partition-keys.js';
import { recordBytes } from '../kafka/transactions.js';
import { ENVELOPE_OVERHEAD } from '../wire/envelope.js';
import { FORGOTTEN_AT_HEADER } from '../wire/headers.js';
import { Keyring } from '../keys/keyring.js';

/** Bytes a record takes in a record batch beyond its key, value and headers (batch header, varints). */
export const RECORD_BATCH_OVERHEAD = 100;

/** The output record of an input record: same partition, timestamp and headers, and its key (or `key`: a pseudonym, see outputKey). */
export function outputRecord(message: KafkaMessage, partition: number, value: Buffer | null, key: Buffer | null = message.key): Message {
  return { key, value, partition, timestamp: message.timestamp, headers: message.headers as IHeaders };
}

/**
 * The record key of an encrypted record: the pseudonym of the key generation that sealed it, if it has
 * one; with pseudonymous keys (SHREDDER_RECORD_KEYS=pseudonym) and no generation to name (a record born
 * shredded, a tombstone of a subject without a key), a fresh random pseudonym, which names nobody;
 * else the input's own key (the subject id, or a key made before pseudonymous keys, which keeps it).
 */
export function outputKey(message: KafkaMessage, pseudonym: Uint8Array | undefined, nameless: boolean): Buffer | null {
  if (pseudonym) return asKafkaBytes(pseudonym);
  return nameless ? asKafkaBytes(Keyring.newPseudonym()) : message.key;
}

/** Bytes the output topic is asked to take for a record whose whole value is sealed (see maxRecordBytes). */
export const sealedRecordBytes = (message: KafkaMessage): number => recordBytes(message as Message) + ENVELOPE_OVERHEAD + RECORD_BATCH_OVERHEAD;

/** The dead-letter reason of a record its output topic cannot take once encrypted. */
export const tooLargeReason = (outputBytes: number, maxRecordBytes: number) =>
  `record too large once encrypted: ${outputBytes} bytes, the output topic takes ${maxRecordBytes} (max.message.bytes)`;

/** kafkajs writes Buffers only: a Buffer as it is (no copy: nothing changes it), other bytes copied into one. */
export const asKafkaBytes = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));

/** A key record (new key, tombstone) as the keys topic's partition `partition` takes it. */
export function keyRecordMessage(record: KeyRecord, partition: number): Message {
  return {
    key: asKafkaBytes(record.recordKey),
    value: record.value ? asKafkaBytes(record.value) : null,
    partition,
    timestamp: String(record.timestamp),
    headers: record.forgottenAt !== undefined ? { [FORGOTTEN_AT_HEADER]: String(record.forgottenAt) } : undefined,
  };
}
