// Keys-topic records this build cannot read: a value that is malformed or of a later format, or a value
// under no subject. Anyone may write to the keys topic, so one such record must never stop a reader:
// the reader keeps the value as the subject's opaque last value (see keys-topic-reader.ts) and reports
// it here, where it is counted (shredder_keys_topic_invalid_values_total) and logged once per subject,
// by the subject's keyed hash, never its id or the value.
import { subjectRefFor, type Logger, type SubjectRef } from '../observability/logger.js';
import type { ProcessorMetrics } from '../observability/metrics.js';
import type { WrappedKeyProblem } from '../wire/wrapped-key.js';
import type { Keyring } from './keyring.js';

/** What is wrong with the record: its value's structure (see wrappedKeyProblem), or `key`: no subject. */
export type InvalidKeyRecordKind = WrappedKeyProblem['kind'] | 'key';

export interface InvalidKeyRecord {
  partition: number;
  offset: string;
  /** The subject (the record key); undefined for a record under no subject. */
  subject?: Uint8Array;
  kind: InvalidKeyRecordKind;
  reason: string;
}

export type OnInvalidKeyRecord = (record: InvalidKeyRecord) => void;

/** Subjects logged per reporter; past it, further subjects are only counted (a topic full of junk must not fill the memory or the logs). */
export const INVALID_LOGGED_LIMIT = 10_000;

export interface InvalidKeyRecordReporterOptions {
  keysTopic: string;
  logger: Logger;
  /** The logs' subject reference; a function, so that it is only derived (from the master key) once needed. */
  subjectRef: () => SubjectRef;
  /** Counts one record (the metric). */
  count?: (record: InvalidKeyRecord) => void;
}

/** A reporter for one keys topic, shared by every partition its reader reads. */
export function invalidKeyRecordReporter({ keysTopic, logger, subjectRef, count }: InvalidKeyRecordReporterOptions): OnInvalidKeyRecord {
  // (by partition and subject reference: a subject is read again when its partition's task reopens or is followed)
  const logged = new Set<string>();
  let saidLimit = false;
  return (record) => {
    count?.(record);
    const subject = record.subject && record.subject.length > 0 ? subjectRef()(record.subject) : undefined;
    const seen = `${record.partition}/${subject ?? ''}`;
    if (logged.has(seen)) return;
    if (logged.size >= INVALID_LOGGED_LIMIT) {
      if (!saidLimit) {
        saidLimit = true;
        logger.warn({ keysTopic, subjects: logged.size }, 'more unreadable keys-topic values: counted in shredder_keys_topic_invalid_values_total, no longer logged');
      }
      return;
    }
    logged.add(seen);
    const fields = { keysTopic, partition: record.partition, offset: record.offset, subject, reason: record.reason };
    if (record.kind === 'key') logger.warn(fields, 'keys-topic record without a subject skipped');
    else logger.warn(fields, "unreadable keys-topic value kept as it is: the subject's records are dead-lettered (key unavailable) until it is forgotten or given a readable value");
  };
}

/**
 * A processor's KeysTopicReaderOptions: its unreadable records counted in its metrics per keys topic,
 * partition and reason, and logged once per subject by `subjectRef` (default: derived from the master
 * key when first needed).
 */
export function keysReaderOptions(keysTopic: string, logger: Logger, masterKey: Keyring, metrics?: ProcessorMetrics, subjectRef?: SubjectRef): { onInvalid: OnInvalidKeyRecord } {
  let ref = subjectRef;
  return {
    onInvalid: invalidKeyRecordReporter({
      keysTopic,
      logger,
      subjectRef: () => (ref ??= subjectRefFor(masterKey)),
      count: ({ partition, kind }) => metrics?.keysTopicInvalidValues.inc({ topic: keysTopic, partition: String(partition), reason: kind }),
    }),
  };
}
