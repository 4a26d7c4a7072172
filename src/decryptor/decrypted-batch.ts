// What the decryptor's batch pipeline (decrypt-batch.ts) takes and gives: kept apart so that the
// pipeline's stages and its callers import these types and not each other.
import type { KafkaMessage, Message } from 'kafkajs';
import type { AeadRegistry } from '../crypto/index.js';
import type { FieldMode } from '../fields/field-mode.js';
import type { PartitionKeys } from '../keys/partition-keys.js';

/**
 * `ok`: the plaintext (or a tombstone passed through, value null). `shredded`: the subject's key for
 * this record is gone (forgotten): value null, or in field mode the record with its encrypted fields
 * set to the shredded value (`shreddedFields` names them). `forget`: the subject was just forgotten,
 * value null: purge what was derived from it.
 */
export type RecordStatus = 'ok' | 'shredded' | 'forget';

export interface DecryptedRecord {
  message: KafkaMessage;
  status: RecordStatus;
  value: Buffer | null;
  /**
   * The record key to give consumers when it is not the record's own: the subject id the record's
   * pseudonym stands for (SHREDDER_RECORD_KEYS=pseudonym). Undefined: the record's own key.
   */
  key?: Buffer;
  /** Field mode: the paths of the fields that could not be opened because their key is gone. */
  shreddedFields?: string[];
}

export interface DecryptContext {
  topic: string;
  partition: number;
  keys: PartitionKeys;
  ciphers: AeadRegistry;
  /** Waits until the key store holds every key committed so far (see PartitionTask.catchUpKeys). */
  catchUpKeys: () => Promise<void>;
  /** Field-level encryption; undefined: whole values. */
  fields?: FieldMode;
}

export interface DecryptedBatch {
  /** One per input record that was not dead-lettered, in input order. */
  records: DecryptedRecord[];
  deadLetters: Message[];
  /** cryptoNs: time in the batch cipher calls. */
  stats: { decrypted: number; shredded: number; forgets: number; keyWaits: number; cryptoNs: number };
}
