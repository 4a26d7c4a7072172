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
import type { PartitionKeys } from '../keys/partition-keys.js';
import { KEY_ID_BYTES } from '../wire/envelope.js';
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
  return preparing ? preparing.then(() => classifyAndOpen(messages, context)) : classifyAndOpen(messages, context);
}

function classifyAndOpen(messages: readonly KafkaMessage[], context: DecryptContext): DecryptedBatch | Promise<DecryptedBatch> {
  const batch = classifyEnvelopes(messages, context);
  const loading = loadKeys(batch, batch.sealed);
  if (loading) return loading.then(() => (assignKeys(batch, batch.sealed) ? catchUpThenOpen(batch) : open(batch)));
  return assignKeys(batch, batch.sealed) ? catchUpThenOpen(batch) : open(batch);
}

function open(batch: OpeningBatch): DecryptedBatch {
  openEnvelopes(batch);
  return decryptedRecords(batch);
}

/**
 * The race between a record and its key: the key may be committed but not yet read. Only once the
 * keys partition has been read to its end now, after the record was read, is a missing key known to
 * be destroyed (those envelopes stay without a key: shredded).
 */
async function catchUpThenOpen(batch: OpeningBatch): Promise<DecryptedBatch> {
  await batch.context.catchUpKeys();
  batch.result.stats.keyWaits++;
  const retry = batch.sealed.filter((s) => !s.key && !batch.failed[s.index]);
  const loading = loadKeys(batch, retry);
  if (loading) await loading;
  assignKeys(batch, retry);
  return open(batch);
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
