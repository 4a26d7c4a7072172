// A record that cannot be processed, as written to the dead letter topic: unchanged, with the reason
// (`shredder.error`) and where it came from (`shredder.source` = topic/partition/offset).
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { ERROR_HEADER, SOURCE_HEADER } from '../wire/headers.js';

export function deadLetter(message: KafkaMessage, topic: string, partition: number, reason: string): Message {
  return {
    key: message.key,
    value: message.value,
    timestamp: message.timestamp,
    headers: { ...(message.headers as IHeaders), [ERROR_HEADER]: reason, [SOURCE_HEADER]: `${topic}/${partition}/${message.offset}` },
  };
}
