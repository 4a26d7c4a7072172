// A record that cannot be processed, as written to the dead letter topic: unchanged, with the reason
// (`shredder.error`) and where it came from (`shredder.source` = topic/partition/offset).
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { Logger, SubjectRef } from '../observability/logger.js';
import { ERROR_HEADER, SOURCE_HEADER } from '../wire/headers.js';

export function deadLetter(message: KafkaMessage, topic: string, partition: number, reason: string): Message {
  return {
    key: message.key,
    value: message.value,
    timestamp: message.timestamp,
    headers: { ...(message.headers as IHeaders), [ERROR_HEADER]: reason, [SOURCE_HEADER]: `${topic}/${partition}/${message.offset}` },
  };
}

/** One warning per dead-lettered record: its reason and source, the subject by its keyed hash only. */
export function logDeadLetters(logger: Logger, subjectRef: SubjectRef, deadLetters: readonly Message[]): void {
  for (const dead of deadLetters) {
    const subject = dead.key ? subjectRef(new Uint8Array(dead.key as Buffer)) : undefined;
    logger.warn({ subject, reason: dead.headers?.[ERROR_HEADER], source: dead.headers?.[SOURCE_HEADER] }, 'record dead-lettered');
  }
}
