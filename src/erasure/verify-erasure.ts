// `kafka-shredder verify-erasure <subject>`: evidence, for one subject, that its keys are destroyed
// everywhere this product controls, and when. It reads the subject's keys-topic partition from its log
// start (the source of truth), the erasure audit trail, and the files of this state dir's local key
// store, and tells: erased; pending (an old key value can still be read, within the erasure deadline);
// overdue (past it); not forgotten (a live key and no forget); or unknown (nothing of the subject).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { auditReference, type ErasureAuditEntry } from '../encryptor/erasure-audit.js';
import { partitionEnds, readToEnd } from '../kafka/read-to-end.js';
import type { Keyring } from '../keys/keyring.js';
import { subjectKeyRecords } from '../keys/subject-key-records.js';
import { subjectPartition } from '../kafka/subject-partition.js';
import { TopicLayoutError } from '../kafka/topics.js';
import type { SubjectRef } from '../observability/logger.js';
import { storeLocation } from '../processor/partition-task.js';
import { wrappedKeyProblem, wrappedMasterKeyId } from '../wire/wrapped-key.js';

export type ErasureStatus = 'erased' | 'pending' | 'overdue' | 'not-forgotten' | 'unknown';

/** verify-erasure's exit codes: 0 erased, 1 overdue, 3 pending; and, where the issue left it open, 4 not forgotten, 5 unknown. */
export const ERASURE_EXIT_CODES: Record<ErasureStatus, number> = { erased: 0, overdue: 1, pending: 3, 'not-forgotten': 4, unknown: 5 };

export interface VerifyErasureOptions {
  kafka: Kafka;
  subject: Uint8Array;
  keysTopic: string;
  auditTopic: string;
  /** The audit trail's key; without it (and without subjectRef) the trail cannot be searched. */
  auditKey?: Uint8Array;
  /** The logs' subject reference (from the master key), also in every audit entry. */
  subjectRef?: SubjectRef;
  /** The master keys: with them, the subject's pseudonymous values (SHREDDER_RECORD_KEYS=pseudonym) are found too. */
  keyring?: Keyring;
  erasureDeadlineMs: number;
  stateDir: string;
  groupId: string;
  /** Every keys partition (SHREDDER_SUBJECT_FIELD: a subject has a key on each partition its records reach). */
  allPartitions?: boolean;
  now?: number;
}

export interface KeyValueSeen {
  offset: number;
  timestamp: string;
  /** The key id (16 hex digits) of a v1 value; absent for a value this build cannot read. */
  keyId?: string;
  masterKeyId?: number;
  /** Why this build cannot read the value (malformed, or of a later format), if so. */
  unreadable?: string;
}

export interface PartitionErasure {
  partition: number;
  /** The subject's last tombstone in the keys topic, if still there (compaction removes it after delete.retention.ms). */
  tombstone?: { offset: number; timestamp: string };
  /** When the subject was last forgotten on this partition (its tombstone, else its audit entry). */
  forgottenAt?: string;
  /** Key values from before that forget that can still be read from the broker: compaction pending. */
  readableOldKeys: KeyValueSeen[];
  /** A key created after the forget (the subject's later records are readable under it). */
  liveKeyAfterForget?: KeyValueSeen;
  /** By when compaction must have erased the old values. */
  deadline?: string;
  localStore: { location: string; present: boolean; filesScanned: number; holdsOldKey: boolean; keyIdsChecked: string[] };
}

export interface ErasureReceipt {
  status: ErasureStatus;
  exitCode: number;
  verifiedAt: string;
  subject: { ref?: string; logRef?: string };
  keysTopic: { topic: string; partitions: PartitionErasure[] };
  audit: { topic: string; searched: boolean; entries: ErasureAuditEntry[] };
  /** What this cannot prove (docs/operations.md, "Proof of erasure"). */
  outOfReach: string[];
}

const OUT_OF_REACH = [
  'copies of the keys topic outside this cluster (mirrors, backups taken before the forget) until they are compacted or expire',
  'other key stores than the one in this state dir (other instances, their disks)',
  'the plaintext input topics and the dead letter topic, until their retention.ms ends',
  'anything a consumer derived from the subject’s records (projections it must purge on the forget marker)',
];

/** Whether any of `needles` occurs in the files under `dir` (RocksDB's SST files, its write-ahead log, ...). */
function scanFiles(dir: string, needles: Buffer[]): { files: number; found: boolean } {
  let files = 0;
  let found = false;
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const file = join(path, name);
      const stat = statSync(file);
      if (stat.isDirectory()) walk(file);
      else if (stat.isFile()) {
        files++;
        const bytes = readFileSync(file);
        if (needles.some((needle) => bytes.includes(needle))) found = true;
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return { files, found };
}

function keyValueSeen(offset: number, timestamp: string, value: Buffer): KeyValueSeen {
  const seen = { offset, timestamp: new Date(Number(timestamp)).toISOString() };
  const problem = wrappedKeyProblem(value);
  // (a value it cannot read has no key id: bytes 2 to 9 of it would name nothing, or nothing at all)
  if (problem) return { ...seen, unreadable: problem.reason };
  return { ...seen, keyId: value.subarray(2, 10).toString('hex'), masterKeyId: wrappedMasterKeyId(value) };
}

/** A key id as the audit trail writes it; anything else (an audit entry of an unreadable value) is not searched for. */
const KEY_ID = /^[0-9a-f]{16}$/;
/** Shorter unreadable values are not searched for in the store: a few bytes would match by chance. */
const MIN_NEEDLE_BYTES = 8;

export async function verifyErasure(options: VerifyErasureOptions): Promise<ErasureReceipt> {
  const { kafka, subject, keysTopic, auditTopic } = options;
  const now = options.now ?? Date.now();
  const subjectBytes = Buffer.from(subject);
  const ref = options.auditKey ? auditReference(options.auditKey, subject) : undefined;
  const logRef = options.subjectRef?.(subject);

  const admin = kafka.admin();
  await admin.connect();
  let partitions: number[];
  let auditExists: boolean;
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(keysTopic)) throw new TopicLayoutError(`the keys topic ${keysTopic} does not exist (SHREDDER_KEYS_TOPIC)`);
    auditExists = topics.includes(auditTopic);
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [keysTopic] })).topics;
    const all = metadata.partitions.map((p) => p.partitionId).sort((a, b) => a - b);
    // the partition the encryptor's task keeps the subject's key on: the producers' default partitioner (murmur2)
    const own = subjectPartition(subjectBytes, metadata.partitions.length);
    partitions = options.allPartitions ? all : [own];
  } finally {
    await admin.disconnect();
  }

  // (with the master keys, also the subject's pseudonymous values and their tombstones: SHREDDER_RECORD_KEYS=pseudonym)
  const found = await subjectKeyRecords(kafka, keysTopic, subjectBytes, await partitionEnds(kafka, keysTopic, partitions), options.keyring, 'kafka-shredder-verify-erasure');
  const seen = new Map(partitions.map((p) => [p, (found.get(p) ?? []).map(({ offset, message }) => ({ offset, timestamp: message.timestamp, value: message.value }))]));
  // the subject's tombstones: an audit entry that names no subject (pseudonymous keys) is found by its tombstone
  const tombstones = new Set([...seen].flatMap(([partition, records]) => records.filter((r) => r.value === null).map((r) => `${partition}/${r.offset}`)));

  const entries: ErasureAuditEntry[] = [];
  const searched = auditExists && (ref !== undefined || logRef !== undefined || tombstones.size > 0);
  if (searched) {
    await readToEnd(
      kafka,
      auditTopic,
      (_, message) => {
        if (!message.value) return;
        let entry: ErasureAuditEntry;
        try {
          entry = JSON.parse(message.value.toString('utf8')) as ErasureAuditEntry;
        } catch {
          return;
        }
        const bySubject = (ref !== undefined && entry.subject?.ref === ref) || (ref === undefined && entry.subject !== undefined && entry.subject.logRef === logRef);
        const byTombstone = entry.subject === undefined && entry.keyDestroyed?.keysTopic === keysTopic && tombstones.has(`${entry.keyDestroyed.partition}/${entry.keyDestroyed.tombstoneOffset}`);
        if (bySubject || byTombstone) entries.push(entry);
      },
      { groupPrefix: 'kafka-shredder-verify-erasure' },
    );
  }

  const results = partitions.map((partition): PartitionErasure => {
    const records = seen.get(partition)!;
    const tombstone = [...records].reverse().find((r) => r.value === null);
    const audited = entries.filter((e) => e.keyDestroyed.keysTopic === keysTopic && e.keyDestroyed.partition === partition).sort((a, b) => a.keyDestroyed.tombstoneOffset - b.keyDestroyed.tombstoneOffset).at(-1);
    // the last forget: the tombstone if still in the log, else (compacted away) the audit entry's
    const forgetOffset = Math.max(tombstone?.offset ?? -1, audited?.keyDestroyed.tombstoneOffset ?? -1);
    const forgottenAtMs = tombstone && tombstone.offset >= forgetOffset ? Number(tombstone.timestamp) : audited ? Date.parse(audited.keyDestroyed.at) : undefined;
    const valueRecords = records.filter((r): r is { offset: number; timestamp: string; value: Buffer } => r.value !== null);
    const values = valueRecords.map((r) => keyValueSeen(r.offset, r.timestamp, r.value));
    const readableOldKeys = forgetOffset >= 0 ? values.filter((v) => v.offset < forgetOffset) : [];
    const after = forgetOffset >= 0 ? values.filter((v) => v.offset > forgetOffset).at(-1) : undefined;
    // the local store: its files must hold none of the destroyed keys' values (found by their key ids;
    // a value this build cannot read, which the store keeps as it is, by its own bytes)
    const location = storeLocation(options.stateDir, options.groupId, keysTopic, partition);
    const destroyedIds = new Set(
      [...readableOldKeys.map((v) => v.keyId), ...entries.filter((e) => e.keyDestroyed.partition === partition).flatMap((e) => e.keyDestroyed.keyIds)].filter(
        (id): id is string => id !== undefined && KEY_ID.test(id),
      ),
    );
    if (after?.keyId) destroyedIds.delete(after.keyId);
    const oldUnreadable = valueRecords.filter((r) => r.offset < forgetOffset && wrappedKeyProblem(r.value) && r.value.length >= MIN_NEEDLE_BYTES).map((r) => r.value);
    const needles = [...[...destroyedIds].map((id) => Buffer.from(id, 'hex')), ...oldUnreadable];
    const scan = forgetOffset >= 0 ? scanFiles(location, needles) : { files: 0, found: false };
    return {
      partition,
      tombstone: tombstone ? { offset: tombstone.offset, timestamp: new Date(Number(tombstone.timestamp)).toISOString() } : undefined,
      forgottenAt: forgottenAtMs !== undefined ? new Date(forgottenAtMs).toISOString() : undefined,
      readableOldKeys,
      liveKeyAfterForget: after,
      deadline: forgottenAtMs !== undefined ? new Date(forgottenAtMs + options.erasureDeadlineMs).toISOString() : undefined,
      localStore: { location, present: existsSync(location), filesScanned: scan.files, holdsOldKey: scan.found, keyIdsChecked: [...destroyedIds] },
    };
  });

  const forgotten = results.filter((r) => r.forgottenAt !== undefined);
  const incomplete = forgotten.filter((r) => r.readableOldKeys.length > 0 || r.localStore.holdsOldKey);
  let status: ErasureStatus;
  if (incomplete.length > 0) status = incomplete.some((r) => now > Date.parse(r.deadline!)) ? 'overdue' : 'pending';
  else if (forgotten.length > 0) status = 'erased';
  else if (results.some((r) => (seen.get(r.partition) ?? []).length > 0)) status = 'not-forgotten';
  else status = 'unknown';
  return {
    status,
    exitCode: ERASURE_EXIT_CODES[status],
    verifiedAt: new Date(now).toISOString(),
    subject: { ref, logRef },
    keysTopic: { topic: keysTopic, partitions: results },
    audit: { topic: auditTopic, searched, entries },
    outOfReach: OUT_OF_REACH,
  };
}

/** The human summary of a receipt. */
export function formatErasureReceipt(receipt: ErasureReceipt): string {
  const lines: string[] = [];
  const who = receipt.subject.logRef ? `subject ${receipt.subject.logRef}` : 'the subject';
  const verdict: Record<ErasureStatus, string> = {
    erased: 'ERASED: no key of it from before its forget can be read from the keys topic or this key store',
    pending: 'PENDING: a key from before its forget can still be read; compaction must erase it by the deadline',
    overdue: 'OVERDUE: a key from before its forget can still be read past the erasure deadline',
    'not-forgotten': 'NOT FORGOTTEN: it has a live key and no forget was carried out',
    unknown: 'UNKNOWN: the keys topic and the audit trail hold nothing of it',
  };
  lines.push(`${who}: ${verdict[receipt.status]} (verified ${receipt.verifiedAt})`);
  for (const p of receipt.keysTopic.partitions) {
    lines.push(`  ${receipt.keysTopic.topic} partition ${p.partition}:`);
    if (p.tombstone) lines.push(`    tombstone at offset ${p.tombstone.offset}, written ${p.tombstone.timestamp}`);
    else if (p.forgottenAt) lines.push(`    tombstone already compacted away; forgotten ${p.forgottenAt} (audit trail)`);
    if (p.forgottenAt) {
      lines.push(
        p.readableOldKeys.length > 0
          ? `    ${p.readableOldKeys.length} earlier key value(s) still readable (offsets ${p.readableOldKeys.map((k) => k.offset).join(', ')}): compaction pending, deadline ${p.deadline}`
          : `    no earlier key value readable: compaction done (deadline was ${p.deadline})`,
      );
      if (p.liveKeyAfterForget?.keyId) lines.push(`    a new key (key id ${p.liveKeyAfterForget.keyId}) was created after the forget: later records of the subject are readable under it`);
      else if (p.liveKeyAfterForget) lines.push(`    a value this build cannot read (${p.liveKeyAfterForget.unreadable}) was written after the forget`);
      lines.push(
        p.localStore.present
          ? `    local key store ${p.localStore.location}: ${p.localStore.holdsOldKey ? 'STILL HOLDS a destroyed key' : 'holds no destroyed key'} (${p.localStore.filesScanned} files scanned)`
          : `    local key store ${p.localStore.location}: not on this machine`,
      );
    } else if (p.liveKeyAfterForget === undefined && (receipt.status === 'not-forgotten')) {
      lines.push('    a live key, no tombstone');
    }
  }
  if (!receipt.audit.searched) lines.push(`  audit trail ${receipt.audit.topic}: not searched (it does not exist, or neither the audit key nor the master key was given)`);
  else lines.push(`  audit trail ${receipt.audit.topic}: ${receipt.audit.entries.length} erasure entr${receipt.audit.entries.length === 1 ? 'y' : 'ies'}`);
  for (const e of receipt.audit.entries) {
    lines.push(`    requested ${e.requested.timestamp} (${e.requested.topic}/${e.requested.partition}/${e.requested.offset}); key destroyed ${e.keyDestroyed.at}, tombstone ${e.keyDestroyed.keysTopic}/${e.keyDestroyed.partition}/${e.keyDestroyed.tombstoneOffset}, key ids [${e.keyDestroyed.keyIds.join(', ')}]; erased by ${e.erasureDeadline.by}`);
  }
  lines.push('  not covered: ' + receipt.outOfReach.join('; '));
  return `${lines.join('\n')}\n`;
}
