// A record that cannot be processed, as written to the dead letter topic: unchanged, with the reason
// (`shredder.error`) and where it came from (`shredder.source` = topic/partition/offset), as the
// contract has it, plus Kafka Connect-style context headers (see ERROR_CONTEXT_HEADERS) that tools
// can filter and replay by without parsing the reason.
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { Logger, SubjectRef } from '../observability/logger.js';
import {
  ERROR_CLASS_HEADER,
  ERROR_HEADER,
  ERROR_OFFSET_HEADER,
  ERROR_PARTITION_HEADER,
  ERROR_STAGE_HEADER,
  ERROR_TOPIC_HEADER,
  SOURCE_HEADER,
  VALUE_BYTES_HEADER,
  VALUE_DROPPED_HEADER,
  headerText,
} from '../wire/headers.js';
import { recordBytes } from './transactions.js';

/** Where in the pipeline a record failed (`shredder.error.stage`). */
export type ErrorStage = 'subject' | 'parse' | 'key' | 'encrypt' | 'decrypt' | 'unknown';

/** What kind of failure it was (`shredder.error.class`): stable names, unlike the reason's wording. */
export type ErrorClass =
  | 'NoSubject'
  | 'NotJson'
  | 'InvalidEnvelope'
  | 'KeyUnavailable'
  | 'RecordTooLarge'
  | 'AuthenticationFailed'
  | 'InvalidPlaintext'
  | 'Shredded'
  | 'NotRegistryFrame'
  | 'SchemaUnusable'
  | 'NotOfSchema'
  | 'Unknown';

/**
 * Every reason the processors give starts with one of these (the reasons are the contract's
 * `shredder.error` texts, docs/processors.md "Bad input"); the class and stage follow from it.
 */
const CLASSES: readonly [prefix: string, errorClass: ErrorClass, stage: ErrorStage][] = [
  ['no subject:', 'NoSubject', 'subject'],
  ['not JSON:', 'NotJson', 'parse'],
  ['not a JSON object:', 'NotJson', 'parse'],
  ['not an encrypted value:', 'InvalidEnvelope', 'parse'],
  ['unknown envelope version', 'InvalidEnvelope', 'parse'],
  ['unknown algorithm', 'InvalidEnvelope', 'parse'],
  ['truncated envelope', 'InvalidEnvelope', 'parse'],
  ['encrypted field is not valid base64url', 'InvalidEnvelope', 'parse'],
  ['key unavailable:', 'KeyUnavailable', 'key'],
  ['record too large once encrypted:', 'RecordTooLarge', 'encrypt'],
  ['record too large once decrypted:', 'RecordTooLarge', 'decrypt'],
  ['authentication failed:', 'AuthenticationFailed', 'decrypt'],
  ['a decrypted field is not valid UTF-8', 'InvalidPlaintext', 'decrypt'],
  ['shredded:', 'Shredded', 'decrypt'],
  // field mode with a schema registry (src/formats/registry/); the frame's reasons before the schema's
  ['value does not start with the schema registry magic byte', 'NotRegistryFrame', 'parse'],
  ['empty value: not a schema registry frame', 'NotRegistryFrame', 'parse'],
  ['schema registry frame', 'NotRegistryFrame', 'parse'],
  ['Protobuf schema registry frame', 'NotRegistryFrame', 'parse'],
  ['message indexes', 'NotRegistryFrame', 'parse'],
  ['schema ', 'SchemaUnusable', 'parse'],
  ['JSON schema id', 'SchemaUnusable', 'parse'],
  ['not Avro of', 'NotOfSchema', 'parse'],
  ['not Protobuf of', 'NotOfSchema', 'parse'],
  ['$', 'NotOfSchema', 'parse'],
  ['a decrypted string field is not valid UTF-8', 'InvalidPlaintext', 'decrypt'],
  ['the decrypted string field', 'InvalidPlaintext', 'decrypt'],
];

export function classifyReason(reason: string): { errorClass: ErrorClass; stage: ErrorStage } {
  const known = CLASSES.find(([prefix]) => reason.startsWith(prefix));
  return known ? { errorClass: known[1], stage: known[2] } : { errorClass: 'Unknown', stage: 'unknown' };
}

export function deadLetter(message: KafkaMessage, topic: string, partition: number, reason: string): Message {
  const { errorClass, stage } = classifyReason(reason);
  return {
    key: message.key,
    value: message.value,
    timestamp: message.timestamp,
    headers: {
      ...(message.headers as IHeaders),
      [ERROR_HEADER]: reason,
      [SOURCE_HEADER]: `${topic}/${partition}/${message.offset}`,
      [ERROR_CLASS_HEADER]: errorClass,
      [ERROR_STAGE_HEADER]: stage,
      [ERROR_TOPIC_HEADER]: topic,
      [ERROR_PARTITION_HEADER]: String(partition),
      [ERROR_OFFSET_HEADER]: message.offset,
    },
  };
}

/** The headers deadLetter() and fitDeadLetters() add: what is left of a dead letter when even its key and own headers do not fit. */
const DEAD_LETTER_HEADERS = [ERROR_HEADER, SOURCE_HEADER, ERROR_CLASS_HEADER, ERROR_STAGE_HEADER, ERROR_TOPIC_HEADER, ERROR_PARTITION_HEADER, ERROR_OFFSET_HEADER];

const headerCount = (headers: IHeaders | undefined): number =>
  Object.values(headers ?? {}).reduce((n: number, v) => n + (Array.isArray(v) ? v.length : 1), 0);

/**
 * An upper bound of the bytes a dead letter takes alone in a record batch, as the broker checks it
 * against max.message.bytes: the batch header (61 bytes), the record's varints and attributes (at most
 * 36 bytes, a timestamp delta of 10 included), 10 bytes of lengths per header, and its key, value and
 * headers.
 */
export const deadLetterBatchBytes = (dead: Message): number => 100 + 10 * headerCount(dead.headers as IHeaders) + recordBytes(dead);

const valueBytes = (value: Message['value']): number => (value == null ? 0 : typeof value === 'string' ? Buffer.byteLength(value) : value.length);

/**
 * Dead letters as the dead letter topic can take them: one larger than its `maxMessageBytes` (the
 * broker would refuse it, abort the batch's transaction, and the batch would fail the same way on every
 * retry: its partition would stall) is written without its value, with why and the value's size in
 * headers; one whose key or own headers are too large even then keeps only the dead-letter headers.
 * Its source headers still say where the record is. The array is returned as it is when all fit.
 */
export function fitDeadLetters(deadLetters: Message[], maxMessageBytes: number): { deadLetters: Message[]; valuesDropped: number } {
  let valuesDropped = 0;
  const fitted = deadLetters.map((dead) => {
    const bytes = deadLetterBatchBytes(dead);
    if (bytes <= maxMessageBytes) return dead;
    valuesDropped++;
    const reason = `the dead letter takes ${bytes} bytes, more than the dead letter topic's max.message.bytes (${maxMessageBytes})`;
    const extra = { [VALUE_BYTES_HEADER]: String(valueBytes(dead.value)) };
    const withoutValue: Message = { ...dead, value: null, headers: { ...(dead.headers as IHeaders), ...extra, [VALUE_DROPPED_HEADER]: `${reason}: its value is dropped` } };
    if (deadLetterBatchBytes(withoutValue) <= maxMessageBytes) return withoutValue;
    const kept = Object.fromEntries(DEAD_LETTER_HEADERS.flatMap((name) => ((dead.headers as IHeaders)[name] === undefined ? [] : [[name, (dead.headers as IHeaders)[name]!]])));
    return { ...dead, key: null, value: null, headers: { ...kept, ...extra, [VALUE_DROPPED_HEADER]: `${reason}: its value, key and headers are dropped` } };
  });
  return { deadLetters: valuesDropped > 0 ? fitted : deadLetters, valuesDropped };
}

/** Whether a dead letter is a shredded record the decryptor was told to dead-letter (SHREDDER_ON_SHREDDED=dlq), not a bad one. */
export const isShreddedDeadLetter = (dead: Message): boolean => headerText(dead.headers as IHeaders, ERROR_CLASS_HEADER) === 'Shredded';

/** One warning per dead-lettered record: its reason and source, the subject by its keyed hash only. */
export function logDeadLetters(logger: Logger, subjectRef: SubjectRef, deadLetters: readonly Message[]): void {
  for (const dead of deadLetters) {
    const subject = dead.key ? subjectRef(new Uint8Array(dead.key as Buffer)) : undefined;
    const dropped = dead.headers?.[VALUE_DROPPED_HEADER];
    const fields = { subject, reason: dead.headers?.[ERROR_HEADER], errorClass: dead.headers?.[ERROR_CLASS_HEADER], source: dead.headers?.[SOURCE_HEADER] };
    logger.warn(dropped === undefined ? fields : { ...fields, valueDropped: dropped, valueBytes: Number(dead.headers?.[VALUE_BYTES_HEADER]) }, 'record dead-lettered');
  }
}
