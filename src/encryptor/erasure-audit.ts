// The erasure audit trail (SHREDDER_AUDIT_TOPIC): one entry per forget request carried out, written
// in the same transaction as its tombstone, so the trail holds exactly the erasures that happened.
// No personal data: the subject appears as the logs' keyed hash and as a reference that whoever holds
// the audit key can recompute from the subject id (`kafka-shredder verify-erasure` does), neither of
// which can be reversed. With pseudonymous record keys (SHREDDER_RECORD_KEYS=pseudonym) not even those:
// a reference recomputable from the subject id would link the subject to its erasure forever, so an
// entry names only the destroyed generation (key ids, tombstone). Retained forever: it is the
// controller's evidence (GDPR accountability).
import { createHmac } from 'node:crypto';
import type { Message, TopicMessages } from 'kafkajs';
import type { ShredderConfig } from '../config/config.js';
import type { WrittenOffsets } from '../kafka/transactions.js';
import type { Keyring } from '../keys/keyring.js';
import type { SubjectRef } from '../observability/logger.js';
import { VERSION } from '../version.js';
import type { ForgetCarriedOut } from './encrypted-batch.js';

export const AUDIT_ENTRY_VERSION = 1;

/** The audit key when SHREDDER_AUDIT_KEY is unset: derived from the current master key for this purpose. */
export const AUDIT_KEY_PURPOSE = 'erasure audit reference v1';

/** One audit entry's value (JSON). */
export interface ErasureAuditEntry {
  version: typeof AUDIT_ENTRY_VERSION;
  type: 'erasure';
  /** Absent with pseudonymous record keys. */
  subject?: { ref: string; logRef: string };
  requested: { topic: string; partition: number; offset: string; timestamp: string };
  keyDestroyed: { keysTopic: string; partition: number; tombstoneOffset: number; keyIds: string[]; at: string };
  erasureDeadline: { deadlineMs: number; by: string };
  processor: { groupId: string; version: string };
}

/** The subject's audit reference: HMAC-SHA256 under the audit key, hex. */
export function auditReference(auditKey: Uint8Array, subject: Uint8Array): string {
  return createHmac('sha256', auditKey).update('kafka-shredder erasure audit reference v1').update(subject).digest('hex');
}

export interface ErasureAuditOptions {
  topic: string;
  keysTopic: string;
  auditKey: Uint8Array;
  subjectRef: SubjectRef;
  erasureDeadlineMs: number;
  groupId: string;
  /** SHREDDER_RECORD_KEYS=pseudonym: entries do not name their subject. */
  pseudonymous?: boolean;
}

export class ErasureAudit {
  constructor(private readonly options: ErasureAuditOptions) {}

  /** The audit trail of a processor that carries out forgets (the encryptor, reencrypt) on `config.keysTopic`. */
  static of(config: ShredderConfig, keyring: Keyring, subjectRef: SubjectRef): ErasureAudit {
    return new ErasureAudit({
      topic: config.auditTopic,
      keysTopic: config.keysTopic,
      auditKey: config.auditKey ?? keyring.derive(AUDIT_KEY_PURPOSE),
      subjectRef,
      erasureDeadlineMs: config.erasureDeadlineMs,
      groupId: config.groupId,
      pseudonymous: config.recordKeys === 'pseudonym',
    });
  }

  /**
   * What a batch's transaction writes to the trail once its key records are sent (see
   * TransactionalWrite.followUp): each forget's entry names its tombstone's offset. Undefined: no forget.
   */
  followUp(source: { topic: string; partition: number }, forgets: readonly ForgetCarriedOut[], keyRecords: number): ((written: WrittenOffsets) => TopicMessages[]) | undefined {
    if (forgets.length === 0) return undefined;
    return (written) => [{ topic: this.topic, messages: this.entries(source, forgets, keyRecords, written) }];
  }

  get topic(): string {
    return this.options.topic;
  }

  /**
   * The audit entries of a batch's forgets, once its key records are sent: `keyRecords` records went
   * to keys partition `partition`, in order, ending before `written`'s next offset there.
   */
  entries(source: { topic: string; partition: number }, forgets: readonly ForgetCarriedOut[], keyRecords: number, written: WrittenOffsets, now = Date.now()): Message[] {
    const { keysTopic, auditKey, subjectRef, erasureDeadlineMs, groupId, pseudonymous } = this.options;
    const next = written.get(`${keysTopic}/${source.partition}`);
    if (next === undefined) throw new Error(`no offset was written to ${keysTopic}/${source.partition} for the batch's tombstones`);
    return forgets.map((forget) => {
      const ref = pseudonymous ? undefined : auditReference(auditKey, forget.subject);
      const entry: ErasureAuditEntry = {
        version: AUDIT_ENTRY_VERSION,
        type: 'erasure',
        ...(ref !== undefined ? { subject: { ref, logRef: subjectRef(forget.subject) } } : {}),
        requested: { topic: source.topic, partition: source.partition, offset: forget.offset, timestamp: new Date(forget.timestamp).toISOString() },
        keyDestroyed: { keysTopic, partition: source.partition, tombstoneOffset: next - keyRecords + forget.keyRecordIndex, keyIds: forget.keyIds, at: new Date(now).toISOString() },
        erasureDeadline: { deadlineMs: erasureDeadlineMs, by: new Date(now + erasureDeadlineMs).toISOString() },
        processor: { groupId, version: VERSION },
      };
      return { key: ref !== undefined ? Buffer.from(ref) : null, value: Buffer.from(JSON.stringify(entry)), timestamp: String(now) };
    });
  }
}
