// The decryptor's last stage (decrypt-batch.ts): each record's outcome, in input order, once its
// envelopes are opened: readable, shredded (its key destroyed), or in field mode its JSON with every
// field opened or set to the shredded value.
import { spliceFields } from '../fields/json-fields.js';
import type { DecryptedBatch } from './decrypted-batch.js';
import type { OpeningBatch } from './opening-batch.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decryptedRecords(batch: OpeningBatch): DecryptedBatch {
  const { messages, outcomes, failed, result, context } = batch;
  const { fields } = context;
  if (!fields) {
    for (const sealed of batch.sealed) {
      const { index, plaintext } = sealed;
      if (failed[index]) continue;
      if (!sealed.key) {
        outcomes[index] = { message: messages[index], status: 'shredded', value: null };
        result.stats.shredded++;
        continue;
      }
      outcomes[index] = { message: messages[index], status: 'ok', value: plaintext! };
      result.stats.decrypted++;
    }
  } else {
    for (const [index, record] of batch.fieldRecords) {
      if (failed[index]) continue;
      const shreddedFields: string[] = [];
      let replacements: string[];
      try {
        replacements = record.spans.map((span, k) => {
          const sealed = record.sealed[k];
          if (!sealed) return record.text.slice(span.start, span.end); // never encrypted: as it is
          if (!sealed.key) {
            shreddedFields.push(span.path.text);
            return fields.shreddedValue;
          }
          return utf8.decode(sealed.plaintext!);
        });
      } catch {
        batch.fail(index, 'a decrypted field is not valid UTF-8 JSON text');
        continue;
      }
      const value = Buffer.from(spliceFields(record.text, record.spans, replacements), 'utf8');
      if (shreddedFields.length > 0) {
        outcomes[index] = { message: messages[index], status: 'shredded', value, shreddedFields };
        result.stats.shredded++;
      } else {
        outcomes[index] = { message: messages[index], status: 'ok', value };
        result.stats.decrypted++;
      }
    }
  }
  for (const outcome of outcomes) if (outcome) result.records.push(outcome);
  return result;
}
