// The encryptor's path for a large batch of whole values whose subjects all have their keys at hand
// (ready-subjects.ts): a backlog's batches, thousands of records of subjects seen before. Classifying
// it is one walk over the records that makes each output record and notes where its subject and value
// lie in the fetched bytes; the sealing thread then gets those bytes a run at a time in one copy each,
// and lays out and seals every envelope itself (crypto/off-thread/span-envelopes.ts). Every per-record
// copy, the associated-data arena and the key lookups of the record-by-record path (classify-records.ts,
// seal-records.ts) stay off the main thread, which bounds a processor's throughput.
// Anything else in the batch (a forget request, a record without a subject, a subject not in the
// table, one forgotten after the record was produced, a record too large once sealed) sends the whole
// batch to the record-by-record path, which handles all of them: this path only ever writes what that one
// would, envelopes being random.
import type { KafkaMessage, Message } from 'kafkajs';
import { CHACHA20_POLY1305 } from '../crypto/aead-algorithms.js';
import type { SealingThread } from '../crypto/off-thread/sealing-thread.js';
import { SpanBatch } from '../crypto/off-thread/span-envelopes.js';
import { ENVELOPE_NONCE_AT } from '../wire/envelope.js';
import { isForgetRequest } from '../wire/headers.js';
import { noEncryptStats, type EncryptContext, type EncryptedBatch } from './encrypted-batch.js';
import { outputRecord, sealedRecordBytes } from './output-records.js';
import { readySubjects } from './ready-subjects.js';

/** A batch classified for sealing from the fetched bytes: its output records, values still to seal. */
export interface FetchSealable {
  sealingThread: SealingThread;
  /** The output records, in input order (values null until sealed). */
  outputs: Message[];
  /** Every value to seal, as where it lies in the fetched bytes, with its subject's key. */
  spans: SpanBatch;
  /** The output record of each item of `spans`. */
  outputOf: Int32Array;
  tombstones: number;
}

/**
 * The batch classified for sealing from the fetched bytes, or undefined when it does not qualify (see
 * above): the caller then takes the record-by-record path. Given `unknown`, a record whose subject is not
 * in the table does not end the walk: it is pushed there, and the batch, declined, qualifies once those
 * subjects have their keys (subjects-keyed-first.ts); `unknown` is left empty when anything else declines it.
 */
export function fetchSealable(messages: readonly KafkaMessage[], context: EncryptContext, unknown?: KafkaMessage[]): FetchSealable | undefined {
  const { sealingThread, partition } = context;
  if (context.fields || !sealingThread || messages.length === 0) return undefined;
  // (at once for small batches, the usual case at steady rates: a guess from the first and last values)
  const guess = messages.length * Math.max(messages[0].value?.length ?? 0, messages[messages.length - 1].value?.length ?? 0);
  if (!sealingThread.takes(CHACHA20_POLY1305, guess)) return undefined;
  const ready = readySubjects(context.keys);
  if (ready.size === 0 && !unknown) return undefined;
  const decline = () => {
    if (unknown) unknown.length = 0;
    return undefined;
  };

  const outputs = new Array<Message>(messages.length);
  const spans = new SpanBatch(messages.length, ENVELOPE_NONCE_AT);
  const outputOf = new Int32Array(messages.length);
  let outputCount = 0;
  let tombstones = 0;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    const subject = message.key;
    if (subject === null || subject.length === 0 || isForgetRequest(message.headers)) return decline();
    const value = message.value;
    if (value === null) {
      if (context.keys.pseudonymousKeys) return decline(); // (its record key needs its subject's key looked up)
      outputs[outputCount++] = outputRecord(message, partition, null); // a tombstone stays a tombstone
      tombstones++;
      continue;
    }
    if (sealedRecordBytes(message) > context.maxRecordBytes) return decline();
    const known = ready.find(subject);
    if (known === undefined) {
      if (!unknown) return undefined;
      unknown.push(message);
      continue;
    }
    if (known.forgottenAt !== undefined && Number(message.timestamp) <= known.forgottenAt) return decline();
    outputOf[spans.add(known.spanKey, value.buffer as ArrayBuffer, value)] = outputCount;
    outputs[outputCount++] = outputRecord(message, partition, null, known.recordKey ?? message.key);
  }
  if (unknown && unknown.length > 0) return undefined;
  if (!sealingThread.takes(CHACHA20_POLY1305, spans.textBytes)) return undefined;
  outputs.length = outputCount;
  return { sealingThread, outputs, spans, outputOf, tombstones };
}

/** Seals a batch classified by fetchSealable, on the sealing thread. */
export function sealFromFetch({ sealingThread, outputs, spans, outputOf, tombstones }: FetchSealable): Promise<EncryptedBatch> {
  const stats = { ...noEncryptStats(), encrypted: spans.count, tombstones, sealedOffThread: spans.count, sealedFromFetch: spans.count };
  return sealingThread.sealSpans(spans).then(({ envelopes, ns, release }) => {
    for (let k = 0; k < envelopes.length; k++) outputs[outputOf[k]].value = envelopes[k];
    stats.cryptoNs = ns;
    return { outputs, keyRecords: [], forgets: [], deadLetters: [], rejections: [], stats, release };
  });
}
