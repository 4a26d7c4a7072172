// A batch on its way through the decryptor's pipeline (decrypt-batch.ts): its envelopes, each record's
// outcome so far, and its dead letters, which every stage adds to.
import type { KafkaMessage } from 'kafkajs';
import type { SealedValue } from '../formats/field-format.js';
import { deadLetter } from '../kafka/dead-letter.js';
import type { DataKey } from '../keys/master-key.js';
import type { DecryptContext, DecryptedBatch, DecryptedRecord } from './decrypted-batch.js';

/** One envelope to open: a whole value, or one encrypted field of a record. */
export interface SealedEnvelope {
  /** The record's index in the batch. */
  index: number;
  subject: Uint8Array;
  envelope: Uint8Array;
  subjectKey: string;
  /** Field mode: the field's path (bound in the associated data) as UTF-8. */
  path?: Uint8Array;
  /** The key that sealed it, once found; undefined: none (yet), or destroyed. */
  key?: DataKey;
  /** Once opened: the plaintext, or null when it failed authentication. */
  plaintext?: Buffer | null;
}

/** Every field set at creation: one object shape on the hot path, whatever is filled in later. */
export const sealedEnvelope = (index: number, subject: Uint8Array, envelope: Uint8Array, subjectKey: string, path?: Uint8Array): SealedEnvelope =>
  ({ index, subject, envelope, subjectKey, path, key: undefined, plaintext: undefined });

/** Field mode: a record's value as its format reads it, and its fields' envelopes. */
export interface FieldRecord {
  scan: SealedValue;
  /** The subject id its subject field's pseudonym stands for, once looked up (SHREDDER_RECORD_KEYS=pseudonym): it goes back into the field. */
  subject?: Uint8Array;
  /** The envelope of each field (undefined: the field was never encrypted, left as it is). */
  sealed: (SealedEnvelope | undefined)[];
}

export class OpeningBatch {
  readonly result: DecryptedBatch = { records: [], deadLetters: [], stats: { decrypted: 0, shredded: 0, forgets: 0, keyWaits: 0, cryptoNs: 0 } };
  /** Each record's outcome once known, in input order (undefined: not yet, or dead-lettered). */
  readonly outcomes: (DecryptedRecord | undefined)[];
  /** Records dead-lettered: nothing more is done with them. */
  readonly failed: boolean[];
  /** Every envelope of the batch, in input order. */
  readonly sealed: SealedEnvelope[] = [];
  /** Field mode: the records with fields to open, by index. */
  readonly fieldRecords = new Map<number, FieldRecord>();
  /** Bytes of every envelope's associated data. */
  aadBytes = 0;

  /**
   * @param subjectsOfKeys each record's subject when its record key is a pseudonym (PartitionKeys.resolvePseudonyms), else undefined
   */
  constructor(
    readonly messages: readonly KafkaMessage[],
    readonly context: DecryptContext,
    readonly subjectsOfKeys: (Uint8Array | undefined)[],
  ) {
    this.outcomes = new Array(messages.length);
    this.failed = new Array(messages.length);
  }

  /** The record key consumers get for record `index`: the subject its pseudonym stands for, if it is one (see DecryptedRecord.key). */
  keyOf(index: number): Buffer | undefined {
    const subject = this.subjectsOfKeys[index];
    return subject && Buffer.from(subject.buffer, subject.byteOffset, subject.byteLength);
  }

  /** Dead-letters record `index` with its reason (once: its first reason is kept). */
  fail(index: number, reason: string): void {
    if (this.failed[index]) return;
    this.failed[index] = true;
    this.outcomes[index] = undefined;
    const { topic, partition } = this.context;
    this.result.deadLetters.push(deadLetter(this.messages[index], topic, partition, reason));
  }
}
