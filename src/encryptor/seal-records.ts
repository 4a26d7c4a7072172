// The record-by-record path's second stage (encrypt-batch.ts), once every subject of the batch is loaded: it
// carries out forget requests, takes or creates each subject's key (a record produced before its
// subject's last forget is born shredded), dead-letters what cannot be written, and seals every
// envelope of the batch (whole values, or in field mode every selected field of every record) in one
// call per algorithm, in-thread or, for a large batch, on the sealing thread.
import type { KafkaMessage, Message } from 'kafkajs';
import type { AlgorithmId } from '../crypto/index.js';
import { EnvelopeKeys, withAadArena, type EnvelopeSealKey } from '../crypto/envelope-batch.js';
import { pathBytes } from '../fields/field-mode.js';
import type { PlainValue } from '../formats/field-format.js';
import { isRecordError } from '../errors/shredder-errors.js';
import { deadLetter } from '../kafka/dead-letter.js';
import { recordBytes } from '../kafka/transactions.js';
import { type DataKey, MasterKey } from '../keys/master-key.js';
import type { PartitionKeys } from '../keys/partition-keys.js';
import { aadLength, ENVELOPE_HEADER_BYTES, ENVELOPE_NONCE_AT, envelopePrefix, writeAadTail } from '../wire/envelope.js';
import { isForgetRequest } from '../wire/headers.js';
import { wrappedKeyProblem } from '../wire/wrapped-key.js';
import type { ClassifiedRecords } from './classify-records.js';
import { noEncryptStats, type EncryptContext, type EncryptedBatch } from './encrypted-batch.js';
import { asKafkaBytes, outputKey, outputRecord, RECORD_BATCH_OVERHEAD, sealedRecordBytes, tooLargeReason } from './output-records.js';
import { readySubjects } from './ready-subjects.js';
import { renew } from './subject-slots.js';

/**
 * The envelopes of one algorithm to seal in one call (an envelope batch), and the output record each
 * belongs to. Its item arrays are made at the batch's size up front, typed where they hold numbers:
 * arrays grown a push at a time leave several times their size in garbage.
 */
interface PendingSeals {
  algorithm: AlgorithmId;
  keys: EnvelopeKeys<DataKey, EnvelopeSealKey>;
  /** Items added: the arrays below hold `count` entries (and room for the batch's others). */
  count: number;
  keyIndexes: Int32Array;
  plaintexts: Uint8Array[];
  aadStarts: Int32Array;
  aadLengths: Int32Array;
  outputIndexes: Int32Array;
  plaintextBytes: number;
}

/** An empty group with room for `capacity` items (every item of the batch). */
const pendingSeals = (algorithm: AlgorithmId, capacity: number): PendingSeals => ({
  algorithm,
  keys: new EnvelopeKeys(sealKeyOf),
  count: 0,
  keyIndexes: new Int32Array(capacity),
  plaintexts: new Array<Uint8Array>(capacity),
  aadStarts: new Int32Array(capacity),
  aadLengths: new Int32Array(capacity),
  outputIndexes: new Int32Array(capacity),
  plaintextBytes: 0,
});

/** Each data key as an envelope batch takes it (the key and its envelope header prefix), made once per key. */
const sealKeys = new WeakMap<DataKey, EnvelopeSealKey>();

function sealKeyOf(dataKey: DataKey): EnvelopeSealKey {
  let sealKey = sealKeys.get(dataKey);
  if (!sealKey) sealKeys.set(dataKey, (sealKey = { key: dataKey.key, prefix: envelopePrefix(dataKey.algorithm, dataKey.keyId) }));
  return sealKey;
}

/** Field mode: an output record waiting for its fields' envelopes. */
interface PendingFields {
  outputIndex: number;
  message: KafkaMessage;
  scan: PlainValue;
  group: PendingSeals;
  /** Index of the record's first field in the group (its fields are consecutive). */
  firstItem: number;
  /** The pseudonym its subject field gets (SHREDDER_RECORD_KEYS=pseudonym with SHREDDER_SUBJECT_FIELD), if any. */
  pseudonym?: Uint8Array;
}

/**
 * With pseudonymous keys and SHREDDER_SUBJECT_FIELD, what replaces a record's subject field: its
 * generation's pseudonym, or for a record no generation names (born shredded) a random one; undefined
 * otherwise (and for a key made before pseudonymous keys, which keeps the subject id in clear).
 */
function subjectFieldPseudonym(context: EncryptContext, dataKey: DataKey, bornShredded: boolean): Uint8Array | undefined {
  if (!context.fields?.subjectPath || !context.keys.pseudonymousKeys) return undefined;
  return dataKey.pseudonym ?? (bornShredded ? MasterKey.newPseudonym() : undefined);
}

/**
 * The record key of an encrypted record (see outputKey). With a subject field the record key is the
 * producer's, not the subject id, and stays, unless it is the subject id itself.
 */
function recordKeyOf(message: KafkaMessage, subject: Uint8Array, context: EncryptContext, pseudonym: Uint8Array | undefined, nameless: boolean): Buffer | null {
  if (context.fields?.subjectPath && !(message.key && message.key.equals(subject))) return message.key;
  return outputKey(message, pseudonym, nameless);
}

/**
 * Adds one envelope to seal, whose associated data is laid out at `at` in the arena: the header,
 * which the cipher writes, then the subject [and field path]. Returns the arena offset after it.
 */
function addSeal(group: PendingSeals, arena: Uint8Array, at: number, keyIndex: number, subject: Uint8Array, plaintext: Uint8Array, outputIndex: number, path?: Uint8Array): number {
  const length = aadLength(subject.length, path);
  writeAadTail(arena, subject, path, at + ENVELOPE_HEADER_BYTES);
  const item = group.count++;
  // (typed arrays drop writes past their end without a word: a miscount must not lose an envelope)
  if (item >= group.keyIndexes.length) throw new Error(`envelope ${item} is past the ${group.keyIndexes.length} the batch was planned for`);
  group.keyIndexes[item] = keyIndex;
  group.plaintexts[item] = plaintext;
  group.aadStarts[item] = at;
  group.aadLengths[item] = length;
  group.outputIndexes[item] = outputIndex;
  group.plaintextBytes += plaintext.length;
  return at + length;
}

/** Dead-letters a record, with its reason kept beside the dead letter for callers (reencrypt) that replace it. */
function reject(result: EncryptedBatch, message: KafkaMessage, topic: string, partition: number, reason: string): void {
  result.deadLetters.push(deadLetter(message, topic, partition, reason));
  result.rejections.push({ offset: message.offset, reason });
}

/** Seals a classified batch whose subjects are all loaded (PartitionKeys.load). */
export function sealRecords(messages: readonly KafkaMessage[], context: EncryptContext, classified: ClassifiedRecords): EncryptedBatch | Promise<EncryptedBatch> {
  return withAadArena(classified.aadBytes, (aadArena) => sealRecordsIn(aadArena, messages, context, classified));
}

/**
 * sealRecords with its associated-data arena: header || subject [|| 0x00 || field path] of every envelope.
 * A promise when an envelope batch went to the sealing thread (the arena has been copied by then).
 */
function sealRecordsIn(aadArena: Uint8Array, messages: readonly KafkaMessage[], context: EncryptContext, classified: ClassifiedRecords): EncryptedBatch | Promise<EncryptedBatch> {
  const { keys, partition, topic, fields } = context;
  const { batch, subjectOf, slotOf, scanOf, problemOf } = classified;
  // (made at the batch's size, then cut to the records written: see PendingSeals)
  const outputs = new Array<Message>(messages.length);
  let outputCount = 0;
  const result: EncryptedBatch = {
    outputs,
    keyRecords: [],
    forgets: [],
    deadLetters: [],
    rejections: [],
    stats: noEncryptStats(),
  };
  const toSeal = new Map<AlgorithmId, PendingSeals>();
  // (the group of the last key: consecutive records usually share the algorithm)
  let lastGroup: PendingSeals | undefined;
  const pendingFields: PendingFields[] = [];
  // (an envelope's associated data begins with its 22 header bytes, also placed before its ciphertext)
  let aadOffset = 0;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    const slot = slotOf[i];
    const subject = subjectOf[i];
    if (!slot || !subject) {
      // (the empty key is also reserved in the keys topic, see segment-roll.ts)
      const reason = problemOf[i] ?? (message.key ? 'no subject: the record key is empty' : 'no subject: the record key is null');
      reject(result, message, topic, partition, reason);
      continue;
    }
    if (slot.batch !== batch) renew(slot, batch); // (another batch of these keys overlapped this one)
    if (isForgetRequest(message.headers)) {
      const destroyed = keys.entry(subject, slot.id).wrapped;
      if (destroyed) result.stats.keysDestroyed++;
      const forgotten = keys.forget(subject, Number(message.timestamp), slot.id);
      result.forgets.push({
        subject,
        offset: message.offset,
        timestamp: Number(message.timestamp),
        keyRecordIndex: result.keyRecords.length,
        // (a value this build cannot read has no key id it can vouch for: the audit entry names none)
        keyIds: destroyed && !wrappedKeyProblem(destroyed) ? [Buffer.from(destroyed.subarray(2, 10)).toString('hex')] : [],
      });
      slot.looked = true;
      slot.key = undefined;
      slot.forgottenAt = forgotten.forgottenAt;
      slot.keyIndex = -1;
      result.keyRecords.push(forgotten);
      // the forget marker, for consumers to purge projections: under the tombstone's record key (a pseudonym, or the subject id)
      outputs[outputCount++] = outputRecord(message, partition, null, asKafkaBytes(forgotten.recordKey));
      result.stats.forgotten++;
      continue;
    }
    if (message.value === null) {
      // a tombstone stays a tombstone (under its subject's pseudonym, with pseudonymous keys; with a
      // subject field its key is the producer's, not a subject id)
      let key = message.key;
      if (keys.pseudonymousKeys && !fields?.subjectPath) {
        try {
          const live = keys.lookup(subject, slot.id).key;
          key = outputKey(message, live?.pseudonym, !live);
        } catch (err) {
          if (!isRecordError(err)) throw err;
          key = outputKey(message, undefined, true); // (its value cannot be read: a key of its own, naming nobody)
        }
      }
      outputs[outputCount++] = outputRecord(message, partition, null, key);
      result.stats.tombstones++;
      continue;
    }

    const scan = scanOf[i];
    const spans = scan?.fields;
    // (field mode: checked again once the fields are sealed; a record with none is passed as it is)
    const outputBytes = spans?.length === 0 ? recordBytes(message as Message) + RECORD_BATCH_OVERHEAD : sealedRecordBytes(message);
    if ((!fields || spans?.length === 0) && outputBytes > context.maxRecordBytes) {
      reject(result, message, topic, partition, tooLargeReason(outputBytes, context.maxRecordBytes));
      continue;
    }
    // (with pseudonymous keys such a record still needs its subject's key: its pseudonym is its record key)
    if (spans && spans.length === 0 && !keys.pseudonymousKeys) {
      outputs[outputCount++] = outputRecord(message, partition, message.value); // no selected field present: nothing personal to seal
      result.stats.encrypted++;
      continue;
    }

    let dataKey: DataKey | undefined;
    let bornShredded = false;
    try {
      if (!slot.looked) {
        const known = keys.lookup(subject, slot.id);
        slot.key = known.key;
        slot.forgottenAt = known.forgottenAt;
        slot.looked = true;
      }
      if (slot.forgottenAt !== undefined && Number(message.timestamp) <= slot.forgottenAt) {
        // Produced before its subject was forgotten (on another route, or late): sealed under a key
        // that is never stored, so it is born shredded instead of readable under the new key.
        dataKey = MasterKey.newDataKey(context.algorithm);
        bornShredded = true;
        result.stats.bornShredded++;
      } else {
        dataKey = slot.key;
        if (!dataKey) {
          const created = keys.createKey(subject, context.algorithm, context.now(), slot.id);
          result.keyRecords.push(created.record);
          dataKey = slot.key = created.key;
          result.stats.keysCreated++;
        }
      }
    } catch (err) {
      // only the value's own fault (malformed, forged, of a master key not held) is the record's; a
      // provider that is down aborts the batch (outcomeOf), which is retried
      if (!isRecordError(err)) throw err;
      reject(result, message, topic, partition, `key unavailable: ${err.message}`);
      continue;
    }
    const fieldPseudonym = subjectFieldPseudonym(context, dataKey, bornShredded);
    if (scan && spans && spans.length === 0) {
      let value: Buffer = message.value;
      try {
        if (fieldPseudonym) value = scan.withSealed([], fieldPseudonym);
      } catch (err) {
        if (!isRecordError(err)) throw err;
        reject(result, message, topic, partition, err.message);
        continue;
      }
      outputs[outputCount++] = outputRecord(message, partition, value, recordKeyOf(message, subject, context, dataKey.pseudonym, bornShredded));
      result.stats.encrypted++;
      continue;
    }
    let group = lastGroup;
    if (group?.algorithm !== dataKey.algorithm) {
      group = toSeal.get(dataKey.algorithm);
      if (!group) toSeal.set(dataKey.algorithm, (group = pendingSeals(dataKey.algorithm, classified.items)));
      lastGroup = group;
    }
    // (the subject's key index, found once: a born-shredded record's key is its own)
    let keyIndex: number;
    if (bornShredded) keyIndex = group.keys.indexOf(dataKey);
    else if (slot.keyIndex >= 0) keyIndex = slot.keyIndex;
    else keyIndex = slot.keyIndex = group.keys.indexOf(dataKey);
    const outputIndex = outputCount;
    if (scan && spans) {
      pendingFields.push({ outputIndex, message, scan, group, firstItem: group.count, pseudonym: fieldPseudonym });
      for (const field of spans) {
        aadOffset = addSeal(group, aadArena, aadOffset, keyIndex, subject, field.plaintext, outputIndex, pathBytes(field.path));
      }
    } else {
      aadOffset = addSeal(group, aadArena, aadOffset, keyIndex, subject, message.value, outputIndex);
    }
    outputs[outputCount++] = outputRecord(message, partition, null, recordKeyOf(message, subject, context, dataKey.pseudonym, bornShredded && keys.pseudonymousKeys));
    result.stats.encrypted++;
  }
  outputs.length = outputCount;
  if (!fields && context.sealingThread?.usable) keepReadySubjects(keys, classified);

  const sealedOf = new Map<PendingSeals, Buffer[]>();
  const onThread: Promise<void>[] = [];
  for (const [algorithm, group] of toSeal) {
    // (a literal, not a spread of group: a spread object's shape makes every access to it slow, which
    // small batches at low rates pay in latency)
    const { count, plaintexts } = group;
    plaintexts.length = count;
    const keyIndexes = group.keyIndexes.subarray(0, count), aadStarts = group.aadStarts.subarray(0, count), aadLengths = group.aadLengths.subarray(0, count);
    const envelopes = { prefixBytes: ENVELOPE_NONCE_AT, aad: aadArena, keys: group.keys.keys, keyIndexes, plaintexts, aadStarts, aadLengths };
    if (context.sealingThread?.takes(algorithm, group.plaintextBytes)) {
      onThread.push(context.sealingThread.sealEnvelopes(envelopes).then(({ envelopes: sealed, ns, release }) => {
        result.stats.cryptoNs += ns;
        result.stats.sealedOffThread += sealed.length;
        sealedOf.set(group, sealed);
        const previous = result.release;
        result.release = previous ? () => (previous(), release()) : release;
      }));
      continue;
    }
    const started = process.hrtime.bigint();
    sealedOf.set(group, context.ciphers.get(algorithm).sealEnvelopes(envelopes));
    result.stats.cryptoNs += Number(process.hrtime.bigint() - started);
  }
  const finish = () => withSealed(result, sealedOf, pendingFields, context);
  return onThread.length === 0 ? finish() : Promise.all(onThread).then(finish);
}

/**
 * Keeps the batch's subjects whose keys it looked up, as they stand after it, for the next batches to
 * be sealed from the fetched bytes (seal-from-fetch.ts, ready-subjects.ts; refreshed first, so what
 * this batch changed is dropped, then added again as it now stands).
 */
function keepReadySubjects(keys: PartitionKeys, classified: ClassifiedRecords): void {
  const ready = readySubjects(keys);
  for (let k = 0; k < classified.slots.length; k++) {
    const slot = classified.slots[k];
    if (slot.batch === classified.batch && slot.looked && slot.key) ready.add(classified.subjects[k], slot.key, slot.forgottenAt);
  }
}

/** Puts the sealed envelopes into the output records (field mode: into their JSON values). */
function withSealed(result: EncryptedBatch, sealedOf: Map<PendingSeals, Buffer[]>, pendingFields: PendingFields[], context: EncryptContext): EncryptedBatch {
  const { fields, topic, partition } = context;
  if (!fields) {
    for (const [group, sealed] of sealedOf) {
      for (let k = 0; k < sealed.length; k++) result.outputs[group.outputIndexes[k]].value = sealed[k];
    }
  }
  if (pendingFields.length > 0) {
    const dropped = new Set<number>();
    for (const pending of pendingFields) {
      const sealed = sealedOf.get(pending.group)!;
      let value: Buffer;
      try {
        value = pending.scan.withSealed(sealed.slice(pending.firstItem, pending.firstItem + pending.scan.fields.length), pending.pseudonym);
      } catch (err) {
        // (a subject field a pseudonym cannot replace: not a string)
        if (!isRecordError(err)) throw err;
        reject(result, pending.message, topic, partition, err.message);
        dropped.add(pending.outputIndex);
        result.stats.encrypted--;
        continue;
      }
      const output = result.outputs[pending.outputIndex];
      output.value = value;
      const outputBytes = recordBytes(output) + RECORD_BATCH_OVERHEAD;
      if (outputBytes > context.maxRecordBytes) {
        reject(result, pending.message, topic, partition, tooLargeReason(outputBytes, context.maxRecordBytes));
        dropped.add(pending.outputIndex);
        result.stats.encrypted--;
      }
    }
    if (dropped.size > 0) result.outputs = result.outputs.filter((_, index) => !dropped.has(index));
  }
  return result;
}
