// A large batch whose only obstacle to being sealed from the fetched bytes (seal-from-fetch.ts) is that
// some of its subjects are not in the ready table: subjects seen for the first time (a growing user
// base, a backlog of sign-ups) or whose keys are in the store but not in memory (a new instance). Their
// keys are found or made first, in one pass over the batch's distinct subjects (one store read, the
// new keys created and wrapped together, staged like any others), and then the batch is sealed from
// the fetched bytes like one of known subjects: without this, every such batch took the record-by-record
// path, which costs several times as much per record on the main thread.
// Whatever the record-by-record path would do otherwise (a record from before its subject's forget, a
// keys-topic value this build cannot read) sends the batch there before any key is made; should the
// batch still not qualify once keyed, it goes there with its new keys, which that path then uses.
import type { KafkaMessage } from 'kafkajs';
import { CHACHA20_POLY1305 } from '../crypto/aead-algorithms.js';
import { isRecordError } from '../errors/shredder-errors.js';
import type { DataKey } from '../keys/keyring.js';
import { subjectId, type KeyRecord } from '../keys/partition-keys.js';
import type { EncryptContext, EncryptedBatch } from './encrypted-batch.js';
import { readySubjects } from './ready-subjects.js';
import { fetchSealable, sealFromFetch } from './seal-from-fetch.js';

interface Unready {
  subject: Uint8Array;
  id: string;
  /** The earliest timestamp of the subject's records in the batch. */
  earliest: number;
  key?: DataKey;
  forgottenAt?: number;
}

/**
 * The batch sealed from the fetched bytes once the subjects of `unknownRecords` (what fetchSealable found
 * not in the ready table, the batch's only obstacle) have their keys; undefined when it cannot qualify
 * even so, with nothing done. `recordByRecord` seals the batch when it turns out not to qualify after
 * keys were made (their key records are then added to what it writes).
 */
export function sealWithSubjectsKeyedFirst(
  messages: readonly KafkaMessage[],
  unknownRecords: readonly KafkaMessage[],
  context: EncryptContext,
  recordByRecord: () => EncryptedBatch | Promise<EncryptedBatch>,
): Promise<EncryptedBatch> | undefined {
  if (context.algorithm !== CHACHA20_POLY1305 || unknownRecords.length === 0) return undefined; // (the ready table keeps keys of the sealing thread's algorithm only)
  const unready = distinctSubjects(unknownRecords);
  if (unready.length > context.keys.cacheCapacity) return undefined; // (more than the ready table holds)
  const { keys } = context;
  const loading = keys.load(unready.map((u) => u.subject), unready.map((u) => u.id));
  return Promise.resolve(loading).then(() => {
    if (!findKeys(unready, context)) return recordByRecord();
    const unkeyed = unready.filter((u) => !u.key);
    // (wrapped in one pass: see Keyring.wrapAll)
    const created = keys.createKeys(unkeyed.map((u) => u.subject), context.algorithm, context.now(), unkeyed.map((u) => u.id));
    unkeyed.forEach((u, i) => (u.key = created.keys[i]));
    const keyRecords: KeyRecord[] = created.records;
    const ready = readySubjects(keys); // (refreshed: the subjects just keyed count as changed, then are added)
    ready.makeRoom(unready.length);
    for (const u of unready) ready.add(u.subject, u.key!, u.forgottenAt);
    const sealable = fetchSealable(messages, context);
    const sealed = sealable ? sealFromFetch(sealable) : recordByRecord();
    return Promise.resolve(sealed).then((batch) => withKeyRecords(batch, keyRecords));
  });
}

/** The subjects of `records`, each once, in order of first appearance, with its earliest timestamp. */
function distinctSubjects(records: readonly KafkaMessage[]): Unready[] {
  const byId = new Map<string, Unready>();
  for (const record of records) {
    const subject = record.key!;
    const id = subjectId(subject);
    const timestamp = Number(record.timestamp);
    const seen = byId.get(id);
    if (seen) seen.earliest = Math.min(seen.earliest, timestamp);
    // (the record's key as it is, a view of the fetch: what keeps it, a staged change and a key record,
    // goes with this batch, and the ready table copies it)
    else byId.set(id, { subject, id, earliest: timestamp });
  }
  return [...byId.values()];
}

/**
 * The live keys of the subjects that have one (unwrapped), before any key is made; false when a subject
 * needs what only the record-by-record path does: a record from before its subject's last forget (born
 * shredded), or a keys-topic value this build cannot read or authenticate (its records are dead-lettered).
 * A master-key provider that is down throws, failing the batch, as everywhere.
 */
function findKeys(unready: Unready[], { keys }: EncryptContext): boolean {
  for (const u of unready) {
    try {
      // (a value that cannot be read or authenticated fails its unwrap as a record error)
      const { key, forgottenAt } = keys.lookup(u.subject, u.id);
      if (forgottenAt !== undefined && u.earliest <= forgottenAt) return false;
      if (key !== undefined && key.algorithm !== CHACHA20_POLY1305) return false;
      u.key = key;
      u.forgottenAt = forgottenAt;
    } catch (err) {
      if (isRecordError(err)) return false;
      throw err;
    }
  }
  return true;
}

function withKeyRecords(batch: EncryptedBatch, keyRecords: KeyRecord[]): EncryptedBatch {
  if (keyRecords.length === 0) return batch;
  // (first: a forget among the batch's records names its tombstone by its index among the key records)
  batch.keyRecords = [...keyRecords, ...batch.keyRecords];
  for (const forget of batch.forgets) forget.keyRecordIndex += keyRecords.length;
  batch.stats.keysCreated += keyRecords.length;
  return batch;
}
