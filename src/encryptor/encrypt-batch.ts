// The encryptor's batch pipeline: turns one input batch (one topic-partition) into what its
// transaction writes: encrypted records in input order, key records (new keys, tombstones) and dead
// letters. Each batch is classified, then sealed, one of two ways that write the same records:
//  - from the fetched bytes (seal-from-fetch.ts): a large batch of whole values whose subjects all
//    have their keys at hand, sealed on the sealing thread straight from the buffer kafkajs fetched;
//    a batch whose only obstacle is subjects without keys in memory gets them first, in one pass
//    (subjects-keyed-first.ts);
//  - record by record (classify-records.ts, seal-records.ts): every other batch, and every case
//    (forgets, new keys, born-shredded records, field mode, dead letters).
import type { KafkaMessage } from 'kafkajs';
import { classifyRecords } from './classify-records.js';
import type { EncryptContext, EncryptedBatch } from './encrypted-batch.js';
import { fetchSealable, sealFromFetch } from './seal-from-fetch.js';
import { sealRecords } from './seal-records.js';
import { sealWithSubjectsKeyedFirst } from './subjects-keyed-first.js';

export type { EncryptContext, EncryptedBatch, ForgetCarriedOut } from './encrypted-batch.js';

/**
 * Encrypts one batch. Returns the result itself, not a promise, when every subject's key is in
 * memory and the batch is sealed in-thread (the usual case at steady rates): a promise would make the
 * batch wait for whatever else is queued on the event loop (other partitions' fetches), adding latency.
 */
export function encryptBatch(messages: readonly KafkaMessage[], context: EncryptContext): EncryptedBatch | Promise<EncryptedBatch> {
  const unknown: KafkaMessage[] = [];
  const fromFetch = fetchSealable(messages, context, unknown);
  if (fromFetch) return sealFromFetch(fromFetch);
  const recordByRecord = () => encryptRecords(messages, context);
  return sealWithSubjectsKeyedFirst(messages, unknown, context, recordByRecord) ?? recordByRecord();
}

/** The record-by-record path alone: what encryptBatch does with a batch that is not sealed from the fetched bytes. */
export function encryptRecords(messages: readonly KafkaMessage[], context: EncryptContext): EncryptedBatch | Promise<EncryptedBatch> {
  const preparing = context.fields?.format.prepare?.(messages.map((m) => m.value));
  return preparing ? preparing.then(() => classifyAndSeal(messages, context)) : classifyAndSeal(messages, context);
}

function classifyAndSeal(messages: readonly KafkaMessage[], context: EncryptContext): EncryptedBatch | Promise<EncryptedBatch> {
  const classified = classifyRecords(messages, context);
  const loading = context.keys.load(classified.subjects, classified.ids);
  return loading ? loading.then(() => sealRecords(messages, context, classified)) : sealRecords(messages, context, classified);
}
