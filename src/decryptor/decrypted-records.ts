// The decryptor's last stage (decrypt-batch.ts): each record's outcome, in input order, once its
// envelopes are opened: readable, shredded (its key destroyed), or in field mode its JSON with every
// field opened or set to the shredded value.
import { isRecordError } from '../errors/shredder-errors.js';
import type { DecryptedBatch } from './decrypted-batch.js';
import type { OpeningBatch } from './opening-batch.js';

export function decryptedRecords(batch: OpeningBatch): DecryptedBatch {
  const { messages, outcomes, failed, result, context } = batch;
  const { fields } = context;
  if (!fields) {
    for (const sealed of batch.sealed) {
      const { index, plaintext } = sealed;
      if (failed[index]) continue;
      if (!sealed.key) {
        outcomes[index] = { message: messages[index], status: 'shredded', value: null, key: batch.keyOf(index) };
        result.stats.shredded++;
        continue;
      }
      outcomes[index] = { message: messages[index], status: 'ok', value: plaintext!, key: batch.keyOf(index) };
      result.stats.decrypted++;
    }
  } else {
    for (const [index, record] of batch.fieldRecords) {
      if (failed[index]) continue;
      const shreddedFields: string[] = [];
      const opened = record.scan.fields.map((field, k) => {
        const sealed = record.sealed[k];
        if (!sealed) return undefined; // never encrypted: as it is
        if (!sealed.key) {
          shreddedFields.push(field.path.text);
          return null;
        }
        return sealed.plaintext!;
      });
      let value: Buffer;
      try {
        value = record.scan.withOpened(opened, record.subject);
      } catch (err) {
        if (!isRecordError(err)) throw err;
        batch.fail(index, err.message); // (a field that does not decrypt to what its format allows)
        continue;
      }
      if (shreddedFields.length > 0) {
        outcomes[index] = { message: messages[index], status: 'shredded', value, shreddedFields, key: batch.keyOf(index) };
        result.stats.shredded++;
      } else {
        outcomes[index] = { message: messages[index], status: 'ok', value, key: batch.keyOf(index) };
        result.stats.decrypted++;
      }
    }
  }
  for (const outcome of outcomes) if (outcome) result.records.push(outcome);
  return result;
}
