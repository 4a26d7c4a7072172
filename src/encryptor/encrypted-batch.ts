// What the encryptor's batch pipeline (encrypt-batch.ts) takes and gives, whichever way a batch is
// sealed: kept apart so that the pipeline's stages import these types and not each other.
import type { Message } from 'kafkajs';
import type { AeadRegistry, AlgorithmId } from '../crypto/index.js';
import type { SealingThread } from '../crypto/off-thread/sealing-thread.js';
import type { FieldMode } from '../fields/field-mode.js';
import type { KeyRecord, PartitionKeys } from '../keys/partition-keys.js';

export interface EncryptContext {
  topic: string;
  partition: number;
  keys: PartitionKeys;
  ciphers: AeadRegistry;
  /** Algorithm of keys created for new subjects. */
  algorithm: AlgorithmId;
  now: () => number;
  /** Largest record the output topic takes (its max.message.bytes); larger ones are dead-lettered. */
  maxRecordBytes: number;
  /** Field-level encryption; undefined: whole values. */
  fields?: FieldMode;
  /** Where large envelope batches are sealed off the main thread; undefined: all in-thread. */
  sealingThread?: SealingThread;
}

/** A forget request carried out in a batch: what its erasure audit entry records (erasure-audit.ts). */
export interface ForgetCarriedOut {
  subject: Uint8Array;
  /** The request's offset and timestamp on the input partition. */
  offset: string;
  timestamp: number;
  /** Its tombstone's index among the batch's key records (all on the task's keys partition, in order). */
  keyRecordIndex: number;
  /** The key ids (hex) of the live key it destroyed; none when the subject had none (a copy on another route). */
  keyIds: string[];
}

/** A record the batch dead-lettered: its input offset and the reason (the dead letter's shredder.error). */
export interface Rejection {
  offset: string;
  reason: string;
}

export interface EncryptStats {
  encrypted: number;
  /** Forget requests carried out. */
  forgotten: number;
  /** Of those, the ones that destroyed a live key (a subject's first forget; the copies on other routes find none). */
  keysDestroyed: number;
  keysCreated: number;
  bornShredded: number;
  tombstones: number;
  /** Time in the batch cipher calls. */
  cryptoNs: number;
  /** Envelopes sealed on the sealing thread. */
  sealedOffThread: number;
  /** Of those, the ones sealed from the fetched bytes (seal-from-fetch.ts). */
  sealedFromFetch: number;
}

export const noEncryptStats = (): EncryptStats => ({ encrypted: 0, forgotten: 0, keysDestroyed: 0, keysCreated: 0, bornShredded: 0, tombstones: 0, cryptoNs: 0, sealedOffThread: 0, sealedFromFetch: 0 });

export interface EncryptedBatch {
  /** The output records, one per input record that was not dead-lettered, in input order. */
  outputs: Message[];
  keyRecords: KeyRecord[];
  forgets: ForgetCarriedOut[];
  deadLetters: Message[];
  /** Why each dead-lettered record was refused, by its input offset, in the order of deadLetters. */
  rejections: Rejection[];
  stats: EncryptStats;
  /**
   * Gives the memory of envelopes sealed on the sealing thread back for reuse: call it once the
   * outputs are written; they are empty afterwards (see ThreadSealed.release). Nothing to give back
   * when absent.
   */
  release?: () => void;
}
