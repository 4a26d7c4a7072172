// The record-by-record path's first stage (encrypt-batch.ts): one pass over a batch that finds each record's
// subject (its key, or in field mode its subject field) and its subject slot, reads field mode's JSON,
// and counts the envelopes and associated-data bytes to come, so that the keys of every subject can be
// loaded at once and sealing (seal-records.ts) allocates each array once, at its final size.
import type { KafkaMessage } from 'kafkajs';
import { isRecordError } from '../errors/shredder-errors.js';
import { pathBytes } from '../fields/field-mode.js';
import type { PlainValue } from '../formats/field-format.js';
import { subjectId } from '../keys/partition-keys.js';
import { aadLength } from '../wire/envelope.js';
import { isForgetRequest } from '../wire/headers.js';
import type { EncryptContext } from './encrypted-batch.js';
import { subjectSlots, type SubjectSlot } from './subject-slots.js';

/** What the first pass over a batch finds out, per record. */
export interface ClassifiedRecords {
  batch: number;
  /** Each record's subject and its slot (undefined: no subject, or field mode could not read the record). */
  subjectOf: (Uint8Array | undefined)[];
  slotOf: (SubjectSlot | undefined)[];
  /** The distinct subjects' bytes and map keys (as PartitionKeys.load takes them), and their slots. */
  subjects: Uint8Array[];
  ids: string[];
  slots: SubjectSlot[];
  /** Field mode: the record's value as its format reads it, or why it cannot be processed. */
  scanOf: (PlainValue | undefined)[];
  problemOf: (string | undefined)[];
  /** Bytes of every envelope's associated data. */
  aadBytes: number;
  /** Envelopes of the batch at most: a record's, or in field mode its selected fields'. */
  items: number;
}

export function classifyRecords(messages: readonly KafkaMessage[], { fields, keys }: EncryptContext): ClassifiedRecords {
  const slots = subjectSlots(keys);
  const batch = slots.beginBatch();
  const subjectOf: (Uint8Array | undefined)[] = new Array(messages.length);
  const slotOf: (SubjectSlot | undefined)[] = new Array(messages.length);
  const subjects: Uint8Array[] = [];
  const ids: string[] = [];
  const distinctSlots: SubjectSlot[] = [];
  const scanOf: (PlainValue | undefined)[] = fields ? new Array(messages.length) : [];
  const problemOf: (string | undefined)[] = fields ? new Array(messages.length) : [];
  let aadBytes = 0;
  let items = fields ? 0 : messages.length;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    let subject: Uint8Array | undefined;
    if (fields && message.value !== null && !isForgetRequest(message.headers)) {
      try {
        const scan = (scanOf[i] = fields.format.scanPlain(message.value));
        subject = scan.subject;
        const subjectLength = subject?.length ?? message.key?.length ?? 0;
        for (const field of scan.fields) aadBytes += aadLength(subjectLength, pathBytes(field.path));
        items += scan.fields.length;
      } catch (err) {
        if (!isRecordError(err)) throw err;
        problemOf[i] = err.message;
        continue;
      }
    }
    if (!subject) {
      const key = message.key;
      if (!key || key.length === 0) continue;
      subject = key;
    }
    const id = subjectId(subject);
    const slot = slots.take(id, batch);
    if (slot.records++ === 0) {
      subjects.push(subject);
      ids.push(id);
      distinctSlots.push(slot);
    }
    subjectOf[i] = subject;
    slotOf[i] = slot;
    if (!fields) aadBytes += aadLength(subject.length);
  }
  return { batch, subjectOf, slotOf, subjects, ids, slots: distinctSlots, scanOf, problemOf, aadBytes, items };
}
