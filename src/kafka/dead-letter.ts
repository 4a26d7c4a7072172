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
  headerText,
} from '../wire/headers.js';

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
  ['authentication failed:', 'AuthenticationFailed', 'decrypt'],
  ['a decrypted field is not valid UTF-8', 'InvalidPlaintext', 'decrypt'],
  ['shredded:', 'Shredded', 'decrypt'],
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

/** Whether a dead letter is a shredded record the decryptor was told to dead-letter (SHREDDER_ON_SHREDDED=dlq), not a bad one. */
export const isShreddedDeadLetter = (dead: Message): boolean => headerText(dead.headers as IHeaders, ERROR_CLASS_HEADER) === 'Shredded';

/** One warning per dead-lettered record: its reason and source, the subject by its keyed hash only. */
export function logDeadLetters(logger: Logger, subjectRef: SubjectRef, deadLetters: readonly Message[]): void {
  for (const dead of deadLetters) {
    const subject = dead.key ? subjectRef(new Uint8Array(dead.key as Buffer)) : undefined;
    logger.warn({ subject, reason: dead.headers?.[ERROR_HEADER], errorClass: dead.headers?.[ERROR_CLASS_HEADER], source: dead.headers?.[SOURCE_HEADER] }, 'record dead-lettered');
  }
}
