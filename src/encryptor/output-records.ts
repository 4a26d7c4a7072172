// What the encryptor writes for an input record, whichever way its batch is sealed.
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { recordBytes } from '../kafka/transactions.js';
import { ENVELOPE_OVERHEAD } from '../wire/envelope.js';

/** Bytes a record takes in a record batch beyond its key, value and headers (batch header, varints). */
export const RECORD_BATCH_OVERHEAD = 100;

/** The output record of an input record: same key, partition, timestamp and headers. */
export function outputRecord(message: KafkaMessage, partition: number, value: Buffer | null): Message {
  return { key: message.key, value, partition, timestamp: message.timestamp, headers: message.headers as IHeaders };
}

/** Bytes the output topic is asked to take for a record whose whole value is sealed (see maxRecordBytes). */
export const sealedRecordBytes = (message: KafkaMessage): number => recordBytes(message as Message) + ENVELOPE_OVERHEAD + RECORD_BATCH_OVERHEAD;
