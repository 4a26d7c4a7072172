// The decryptor's batch pipeline: opens one batch of encrypted records (one topic-partition) into each
// record's status (readable, shredded or a forget marker) and plaintext, and the records that cannot
// be opened, as dead letters with their reason. Its stages:
//  1. classify (classify-envelopes.ts): forget markers and tombstones settled, every envelope found;
//  2. keys (below): each envelope's key, waiting for the keys partition when one is missing;
//  3. open (open-envelopes.ts): every envelope of the batch in one call per algorithm;
//  4. records (decrypted-records.ts): each record's outcome, in input order.
import type { KafkaMessage } from 'kafkajs';
import { isRecordError } from '../errors/shredder-errors.js';
import type { DataKey } from '../keys/master-key.js';
import { subjectId, type PartitionKeys } from '../keys/partition-keys.js';
import { aadLength, KEY_ID_BYTES } from '../wire/envelope.js';
import { PSEUDONYM_BYTES } from '../wire/wrapped-key.js';
import { classifyEnvelopes } from './classify-envelopes.js';
import type { DecryptContext, DecryptedBatch } from './decrypted-batch.js';
import { decryptedRecords } from './decrypted-records.js';
import { openEnvelopes } from './open-envelopes.js';
import type { OpeningBatch, SealedEnvelope } from './opening-batch.js';

export type { DecryptContext, DecryptedBatch, DecryptedRecord, RecordStatus } from './decrypted-batch.js';

/**
 * Opens one batch. Returns the result itself, not a promise, when every key the batch needs is in
 * memory (the usual case): a promise would make the batch wait for whatever else is queued on the
 * event loop (other partitions' fetches), adding latency.
 */
export function decryptBatch(messages: readonly KafkaMessage[], context: DecryptContext): DecryptedBatch | Promise<DecryptedBatch> {
  const preparing = context.fields?.format.prepare?.(messages.map((m) => m.value));
  // (record keys that are pseudonyms stand for their subjects: SHREDDER_RECORD_KEYS=pseudonym)
  const resolving = context.keys.resolvePseudonyms(messages.map((m) => m.key));
  if (preparing || resolving instanceof Promise) return Promise.all([resolving, preparing]).then(([subjects]) => classifyAndOpen(messages, context, subjects));
  return classifyAndOpen(messages, context, resolving);
}

function classifyAndOpen(messages: readonly KafkaMessage[], context: DecryptContext, subjectsOfKeys: (Uint8Array | undefined)[]): DecryptedBatch | Promise<DecryptedBatch> {
  const batch = classifyEnvelopes(messages, context, subjectsOfKeys);
  const resolving = resolveSubjectFields(batch);
  return resolving ? resolving.then(() => loadAndOpen(batch)) : loadAndOpen(batch);
}

function loadAndOpen(batch: OpeningBatch): DecryptedBatch | Promise<DecryptedBatch> {
  const loading = loadKeys(batch, batch.sealed);
  const then = () => (assignKeys(batch, batch.sealed) || unresolvedMarkers(batch).length > 0 ? catchUpThenOpen(batch) : open(batch));
  return loading ? loading.then(then) : then();
}

function open(batch: OpeningBatch): DecryptedBatch {
  openEnvelopes(batch);
  return decryptedRecords(batch);
}

/**
 * The race between a record and its key: the key may be committed but not yet read. Only once the
 * keys partition has been read to its end now, after the record was read, is a missing key known to
 * be destroyed (those envelopes stay without a key: shredded). A record key that may be a pseudonym
 * whose key record was not read yet is looked up again then too.
 */
async function catchUpThenOpen(batch: OpeningBatch): Promise<DecryptedBatch> {
  await batch.context.catchUpKeys();
  batch.result.stats.keyWaits++;
  const retry = batch.sealed.filter((s) => !s.key && !batch.failed[s.index]);
  await resolveAgain(batch, retry);
  const loading = loadKeys(batch, retry);
  if (loading) await loading;
  assignKeys(batch, retry);
  return open(batch);
}

/**
 * Field mode: gives each record whose subject field holds a pseudonym (SHREDDER_RECORD_KEYS=pseudonym)
 * the subject id it stands for, as the subject bound in its envelopes. Undefined when none needs a
 * read; one not found keeps the pseudonym as its subject (no key: looked up again after the catch-up).
 */
function resolveSubjectFields(batch: OpeningBatch): Promise<void> | undefined {
  const waiting = [...batch.fieldRecords.values()].filter((r) => r.scan.pseudonym && !r.subject);
  if (waiting.length === 0) return undefined;
  const found = batch.context.keys.resolvePseudonyms(waiting.map((r) => r.scan.pseudonym));
  const apply = (subjects: (Uint8Array | undefined)[]) =>
    waiting.forEach((record, k) => {
      const subject = subjects[k];
      if (!subject) return;
      record.subject = subject;
      for (const sealed of record.sealed) if (sealed) rebind(batch, sealed, subject);
    });
  if (found instanceof Promise) return found.then(apply);
  apply(found);
  return undefined;
}

/** Binds an envelope to `subject` (what its pseudonym stands for) instead of the subject it was classified with. */
function rebind(batch: OpeningBatch, sealed: SealedEnvelope, subject: Uint8Array): void {
  batch.aadBytes += aadLength(subject.length, sealed.path) - aadLength(sealed.subject.length, sealed.path);
  sealed.subject = subject;
  sealed.subjectKey = subjectId(subject);
}

/** Indexes of forget markers and tombstones whose record key may be a pseudonym not looked up successfully yet (every batch asks: no array made but for a match). */
function unresolvedMarkers(batch: OpeningBatch): readonly number[] {
  const { messages, subjectsOfKeys } = batch;
  let found: number[] | undefined;
  for (let i = 0; i < messages.length; i++) {
    if (messages[i].value === null && !subjectsOfKeys[i] && messages[i].key?.length === PSEUDONYM_BYTES) (found ??= []).push(i);
  }
  return found ?? NONE;
}
const NONE: readonly number[] = [];

/**
 * Looks up again, after the keys partition caught up, the record keys of `retry`'s envelopes and of
 * forget markers and tombstones that may be pseudonyms: those found now stand for their subjects.
 */
async function resolveAgain(batch: OpeningBatch, retry: SealedEnvelope[]): Promise<void> {
  const { messages, subjectsOfKeys, outcomes } = batch;
  const indexes = [...new Set([...retry.map((s) => s.index), ...unresolvedMarkers(batch)])].filter((i) => !subjectsOfKeys[i] && messages[i].key?.length === PSEUDONYM_BYTES);
  if (indexes.length === 0) return resolveSubjectFields(batch);
  const subjects = await batch.context.keys.resolvePseudonyms(indexes.map((i) => messages[i].key));
  indexes.forEach((index, k) => {
    const subject = subjects[k];
    if (!subject) return;
    subjectsOfKeys[index] = subject;
    const outcome = outcomes[index];
    if (outcome) outcome.key = batch.keyOf(index);
  });
  for (const sealed of retry) {
    const subject = subjectsOfKeys[sealed.index];
    // (a whole value's subject is its record key; a field's, when no subject field named another)
    if (subject && sealed.subject === messages[sealed.index].key) rebind(batch, sealed, subject);
  }
  await resolveSubjectFields(batch);
}

/** Loads the candidates' subjects into memory; undefined when they all are already. */
const loadKeys = (batch: OpeningBatch, candidates: SealedEnvelope[]): Promise<void> | undefined =>
  batch.context.keys.load(candidates.map((s) => s.subject), candidates.map((s) => s.subjectKey));

/** Gives each candidate its key (once loaded); returns whether any has none. */
function assignKeys(batch: OpeningBatch, candidates: SealedEnvelope[]): boolean {
  let missing = false;
  for (const sealed of candidates) {
    try {
      sealed.key = keyFor(batch.context.keys, sealed);
      if (!sealed.key) missing = true;
    } catch (err) {
      // e.g. wrapped under another master key; a provider that is down is no record's fault: the batch is retried
      if (!isRecordError(err)) throw err;
      batch.fail(sealed.index, `key unavailable: ${err.message}`);
    }
  }
  return missing;
}

/** The subject's live key if it is the one that sealed the envelope; undefined: another generation, or none. */
function keyFor(keys: PartitionKeys, sealed: SealedEnvelope): DataKey | undefined {
  const live = keys.liveKey(sealed.subject, sealed.subjectKey);
  if (!live) return undefined;
  const envelope = sealed.envelope;
  if (live.algorithm !== envelope[1]) return undefined;
  const keyId = live.keyId;
  for (let b = 0; b < KEY_ID_BYTES; b++) if (keyId[b] !== envelope[2 + b]) return undefined;
  return live;
}
