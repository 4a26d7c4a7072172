// `kafka-shredder export <subject>`: a data subject's right of access and to portability (GDPR Art. 15
// and 20). Every record of the subject in every route's encrypted topic, decrypted, as JSON lines
// (exported-record.ts). It reads the subject's partition (where the producers' default partitioner put
// the record key, or every partition when the subject is a field of the value) to its end, takes the
// subject's records and nobody else's, and opens them with the keys the keys topic holds for that
// subject alone (subject-keys.ts). Records of a destroyed key generation are listed as shredded,
// without a value: their plaintext is gone, which is the point.
import type { Kafka, KafkaMessage } from 'kafkajs';
import { loadAeadRegistry } from '../crypto/index.js';
import { decryptBatch, type DecryptContext } from '../decryptor/decrypt-batch.js';
import { isRecordError } from '../errors/shredder-errors.js';
import type { FieldMode } from '../fields/field-mode.js';
import { partitionEnds, readUpTo, type PartitionEnd } from '../kafka/read-to-end.js';
import { subjectPartition } from '../kafka/subject-partition.js';
import { TopicLayoutError } from '../kafka/topics.js';
import type { Keyring } from '../keys/keyring.js';
import { ERROR_HEADER, ERROR_OFFSET_HEADER, headerText } from '../wire/headers.js';
import { parseWrappedKey, wrappedKeyProblem } from '../wire/wrapped-key.js';
import { exportedRecord, type ExportedRecord, type ExportedStatus } from './exported-record.js';
import { SubjectKeys, subjectKeyStates, type SubjectKeyState } from './subject-keys.js';

/** `exported`: the subject has a live key; `forgotten`: it has none and was forgotten (or only shredded records are left); `unknown`: nothing of it was found. */
export type ExportStatus = 'exported' | 'forgotten' | 'unknown';

/** The command's exit code for each status (like verify-erasure's: 5 is unknown in both). */
export const EXPORT_EXIT_CODES: Record<ExportStatus, number> = { exported: 0, unknown: 5, forgotten: 6 };

export interface SubjectExportOptions {
  kafka: Kafka;
  subject: Uint8Array;
  /** The encrypted topics: every route's `to` topic. */
  topics: readonly string[];
  keysTopic: string;
  keyring: Keyring;
  /** Field mode (SHREDDER_FIELDS, SHREDDER_SUBJECT_FIELD, a schema registry); undefined: whole values. */
  fields?: FieldMode;
  /** Read this partition only; default: the record key's partition, or every partition when the subject is a field of the value. */
  partition?: number;
  /** Takes each line (a JSON text, no newline); the export waits for a returned promise (back-pressure). */
  write: (line: string) => void | Promise<void>;
  /** After each batch read. */
  onProgress?: (progress: ExportProgress) => void;
}

export interface ExportProgress {
  topic: string;
  /** Records read so far, of every topic. */
  scanned: number;
  /** Offsets to read in all, of every topic (compaction and aborted transactions leave gaps: an upper bound). */
  total: number;
  /** The subject's records found so far. */
  found: number;
}

export interface TopicExport {
  topic: string;
  partitions: number[];
  scanned: number;
  /** The subject's records by status. */
  records: Record<ExportedStatus, number>;
}

export interface ExportSummary {
  status: ExportStatus;
  exitCode: number;
  keysTopic: { topic: string; partitions: { partition: number; liveKey: boolean; keyId?: string; forgottenAt?: string }[] };
  topics: TopicExport[];
  /** Records written, of every topic. */
  exported: number;
}

const noRecords = (): Record<ExportedStatus, number> => ({ readable: 0, shredded: 0, forget: 0, tombstone: 0, unreadable: 0 });

export async function exportSubject(options: SubjectExportOptions): Promise<ExportSummary> {
  const { kafka, subject, topics, keysTopic, fields } = options;
  if (subject.length === 0) throw new Error('the subject must not be empty');
  const partitions = await partitionsToRead(options);
  // The encrypted topics' ends are taken before the keys topic is read: a record below them was
  // committed with its key (one transaction), so the keys read next include every key they need.
  const topicEnds = new Map<string, PartitionEnd[]>();
  for (const topic of topics) topicEnds.set(topic, await partitionEnds(kafka, topic, partitions));
  const states = await subjectKeyStates(kafka, keysTopic, subject, await partitionEnds(kafka, keysTopic, partitions), options.keyring);
  const ciphers = await loadAeadRegistry();
  const keys = await SubjectKeys.open(subject, states, options.keyring);
  const wanted = Buffer.from(subject.buffer, subject.byteOffset, subject.byteLength);
  // (the record keys of the subject's records: its id, and the pseudonyms of its generations still known)
  const pseudonyms = states.flatMap((s) => s.pseudonyms.map((p) => Buffer.from(p)));
  const recordKeys = [wanted, ...pseudonyms];
  const total = [...topicEnds.values()].flat().reduce((sum, e) => sum + Math.max(0, e.high - e.low), 0);
  let scanned = 0;
  let found = 0;
  const results: TopicExport[] = [];
  try {
    for (const topic of topics) {
      const result: TopicExport = { topic, partitions, scanned: 0, records: noRecords() };
      results.push(result);
      await readUpTo(
        kafka,
        topic,
        topicEnds.get(topic)!,
        async (partition, messages) => {
          const mine = await subjectRecords(messages, wanted, recordKeys, fields);
          if (mine.length > 0) {
            const context: DecryptContext = { topic, partition, keys: keys.of(partition), ciphers, fields, catchUpKeys: () => Promise.resolve() };
            for (const record of await opened(mine, context, wanted, pseudonyms)) {
              result.records[record.status]++;
              found++;
              await options.write(JSON.stringify(record));
            }
          }
          result.scanned += messages.length;
          scanned += messages.length;
          options.onProgress?.({ topic, scanned, total, found });
        },
        // (large fetches: an export reads whole partitions, most of it other subjects' records)
        { groupPrefix: 'kafka-shredder-export', maxBytesPerPartition: 8 * 1024 * 1024, timeoutMs: 120_000 },
      );
    }
  } finally {
    await keys.close();
  }
  const status = exportStatus(states, results);
  return {
    status,
    exitCode: EXPORT_EXIT_CODES[status],
    keysTopic: { topic: keysTopic, partitions: states.map(keyState) },
    topics: results,
    exported: found,
  };
}

async function partitionsToRead({ kafka, topics, keysTopic, partition, fields, subject }: SubjectExportOptions): Promise<number[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = [keysTopic, ...topics].filter((t) => !existing.has(t));
    if (missing.length > 0) throw new TopicLayoutError(`${missing.map((t) => JSON.stringify(t)).join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist: check SHREDDER_KEYS_TOPIC and the to topics of SHREDDER_ROUTES`);
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [keysTopic] })).topics;
    const count = metadata.partitions.length;
    if (partition !== undefined) {
      if (!Number.isInteger(partition) || partition < 0 || partition >= count) throw new TopicLayoutError(`--partition ${partition}: the keys topic ${keysTopic} has partitions 0 to ${count - 1}`);
      return [partition];
    }
    // (the encryptor keeps each record's input partition, and the keys topic is partitioned like the input)
    return fields?.subjectPath ? metadata.partitions.map((p) => p.partitionId).sort((a, b) => a - b) : [subjectPartition(subject, count)];
  } finally {
    await admin.disconnect();
  }
}

/**
 * The subject's records among `messages`: its record key is the subject or one of its pseudonyms
 * (`recordKeys`), or, with a subject field, the value's subject field is the subject (a null value, a
 * forget marker among them, is the record key's). A value whose subject cannot be read is nobody's
 * that the export can tell: it is left out.
 */
async function subjectRecords(messages: KafkaMessage[], subject: Buffer, recordKeys: readonly Buffer[], fields: FieldMode | undefined): Promise<KafkaMessage[]> {
  const keyed = (m: KafkaMessage) => m.key !== null && recordKeys.some((k) => k.equals(m.key!));
  if (!fields?.subjectPath) return messages.filter(keyed);
  await fields.format.prepare?.(messages.map((m) => m.value));
  return messages.filter((m) => {
    if (m.value === null) return keyed(m);
    try {
      const scan = fields.format.scanSealed(m.value);
      // (a subject field holding a pseudonym: one of the subject's generations)
      if (scan.pseudonym) return recordKeys.some((k) => k.equals(scan.pseudonym!));
      return scan.subject !== undefined && subject.equals(scan.subject);
    } catch (err) {
      if (isRecordError(err)) return false;
      throw err;
    }
  });
}

/** The records opened by the decryptor's own pipeline, in order, each with what became of it. */
async function opened(messages: KafkaMessage[], context: DecryptContext, subject: Buffer, pseudonyms: readonly Buffer[]): Promise<ExportedRecord[]> {
  const batch = await decryptBatch(messages, context);
  const outcomes = new Map(batch.records.map((r) => [r.message, r]));
  const reasons = new Map(batch.deadLetters.map((d) => [headerText(d.headers, ERROR_OFFSET_HEADER), headerText(d.headers, ERROR_HEADER)]));
  const { topic, partition } = context;
  return messages.map((message) => {
    // (a record keyed by one of the subject's pseudonyms is listed under the subject id, as consumers get it)
    const key = message.key && pseudonyms.some((p) => p.equals(message.key!)) ? subject : message.key;
    const outcome = outcomes.get(message);
    if (!outcome) return exportedRecord(topic, partition, message, { key, status: 'unreadable', value: null, reason: reasons.get(message.offset) ?? 'cannot be opened' });
    if (outcome.status === 'forget') return exportedRecord(topic, partition, message, { key, status: 'forget', value: null });
    if (outcome.status === 'shredded') return exportedRecord(topic, partition, message, { key, status: 'shredded', value: outcome.value, shreddedFields: outcome.shreddedFields });
    return exportedRecord(topic, partition, message, { key, status: outcome.value === null ? 'tombstone' : 'readable', value: outcome.value });
  });
}

function exportStatus(states: readonly SubjectKeyState[], results: readonly TopicExport[]): ExportStatus {
  if (states.some((s) => s.wrapped !== undefined)) return 'exported';
  const forgotten = states.some((s) => s.records > 0) || results.some((r) => r.records.shredded + r.records.forget > 0);
  return forgotten ? 'forgotten' : results.some((r) => Object.values(r.records).some((n) => n > 0)) ? 'exported' : 'unknown';
}

function keyState(state: SubjectKeyState): ExportSummary['keysTopic']['partitions'][number] {
  const readable = state.wrapped !== undefined && wrappedKeyProblem(state.wrapped) === undefined;
  return {
    partition: state.partition,
    liveKey: state.wrapped !== undefined,
    ...(readable ? { keyId: Buffer.from(parseWrappedKey(state.wrapped!).keyId).toString('hex') } : {}),
    ...(state.forgottenAt !== undefined ? { forgottenAt: new Date(state.forgottenAt).toISOString() } : {}),
  };
}

/** The human summary of an export: its status, then a count per topic and the subject's keys. */
export function formatExportSummary(summary: ExportSummary): string {
  const headline: Record<ExportStatus, string> = {
    exported: `EXPORTED: ${summary.exported} record${summary.exported === 1 ? '' : 's'} of the subject`,
    forgotten: `FORGOTTEN: the subject has no live key; ${summary.exported} record${summary.exported === 1 ? '' : 's'} of it listed, none readable`,
    unknown: 'UNKNOWN: nothing of the subject in the keys topic or the encrypted topics read',
  };
  const lines = [headline[summary.status]];
  for (const t of summary.topics) {
    const r = t.records;
    const partitions = `partition${t.partitions.length === 1 ? '' : 's'} ${t.partitions.join(', ')}`;
    lines.push(
      `  ${t.topic} (${partitions}): ${r.readable + r.shredded + r.forget + r.tombstone + r.unreadable} of ${t.scanned} records scanned: ` +
        `${r.readable} readable, ${r.shredded} shredded, ${r.forget} forget markers, ${r.tombstone} tombstones, ${r.unreadable} unreadable`,
    );
  }
  for (const p of summary.keysTopic.partitions) {
    const key = p.liveKey ? `live key ${p.keyId ?? '(a value this version cannot read)'}` : 'no live key';
    lines.push(`  keys topic ${summary.keysTopic.topic}, partition ${p.partition}: ${key}${p.forgottenAt ? `; last forgotten at ${p.forgottenAt}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
