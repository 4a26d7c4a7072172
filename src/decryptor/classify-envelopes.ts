// The decryptor's first stage (decrypt-batch.ts): one pass over a batch that settles forget markers and
// tombstones, and finds every envelope to open (whole values, or in field mode every encrypted field)
// with its subject, or dead-letters the record (no subject, not an envelope, JSON field mode cannot read).
import type { KafkaMessage } from 'kafkajs';
import { AES_256_GCM, CHACHA20_POLY1305 } from '../crypto/index.js';
import { isRecordError, RecordError } from '../errors/shredder-errors.js';
import { pathBytes } from '../fields/field-mode.js';
import { subjectId } from '../keys/partition-keys.js';
import { aadLength, ENVELOPE_OVERHEAD, ENVELOPE_VERSION, parseEnvelope } from '../wire/envelope.js';
import { isForgetRequest } from '../wire/headers.js';
import type { DecryptContext } from './decrypted-batch.js';
import { OpeningBatch, sealedEnvelope, type FieldRecord } from './opening-batch.js';

class NoSubject extends RecordError {}

/** Throws EnvelopeError unless `value` is a v1 envelope of a known algorithm (checked without allocating first). */
function checkEnvelope(value: Uint8Array): void {
  const ok = value.length >= ENVELOPE_OVERHEAD && value[0] === ENVELOPE_VERSION && (value[1] === CHACHA20_POLY1305 || value[1] === AES_256_GCM);
  if (!ok) parseEnvelope(value); // throws, saying what is wrong
}

/**
 * @param subjectsOfKeys each record's subject when its record key is a pseudonym (see OpeningBatch), which
 * then stands in for the record key: as the subject bound in its envelopes, and as the key consumers get
 */
export function classifyEnvelopes(messages: readonly KafkaMessage[], context: DecryptContext, subjectsOfKeys: (Uint8Array | undefined)[]): OpeningBatch {
  const { fields } = context;
  const batch = new OpeningBatch(messages, context, subjectsOfKeys);
  const { sealed: sealedAll, outcomes, result } = batch;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    if (message.value === null) {
      // a forget marker, or a tombstone the encryptor passed through
      const forget = isForgetRequest(message.headers);
      outcomes[i] = { message, status: forget ? 'forget' : 'ok', value: null, key: batch.keyOf(i) };
      if (forget) result.stats.forgets++;
      continue;
    }
    const recordKey = subjectsOfKeys[i] ?? message.key;
    try {
      if (!fields) {
        if (!recordKey || recordKey.length === 0) throw new NoSubject('no subject: the record key is empty or null');
        const envelope = message.value;
        checkEnvelope(envelope);
        sealedAll.push(sealedEnvelope(i, recordKey, envelope, subjectId(recordKey)));
        batch.aadBytes += aadLength(recordKey.length);
        continue;
      }
      const scan = fields.format.scanSealed(message.value);
      const subject = scan.subject ?? (recordKey?.length ? recordKey : undefined);
      if (!subject) throw new NoSubject('no subject: the record key is empty or null');
      const record: FieldRecord = { scan, sealed: [] };
      const subjectKey = subjectId(subject);
      for (const { envelope, path: fieldPath } of scan.fields) {
        if (!envelope) {
          record.sealed.push(undefined);
          continue;
        }
        checkEnvelope(envelope);
        const path = pathBytes(fieldPath);
        const sealed = sealedEnvelope(i, subject, envelope, subjectKey, path);
        record.sealed.push(sealed);
        sealedAll.push(sealed);
        batch.aadBytes += aadLength(subject.length, path);
      }
      batch.fieldRecords.set(i, record);
    } catch (err) {
      if (!isRecordError(err)) throw err;
      batch.fail(i, err.message);
    }
  }
  return batch;
}
