// Turns one input batch (one topic-partition) into what its transaction writes: encrypted records in
// input order, key records (new keys, tombstones) and dead letters. Every envelope of the batch (whole
// values, or in field mode every selected field of every record) is sealed in one call to the batch
// cipher of its key's algorithm, or, for a large batch, on the sealing thread.
import type { KafkaMessage, Message } from 'kafkajs';
import type { AeadRegistry, AlgorithmId } from '../crypto/index.js';
import { EnvelopeKeys, withAadArena, type EnvelopeSealKey } from '../crypto/envelope-batch.js';
import type { SealingThread } from '../crypto/off-thread/sealing-thread.js';
import { type DataKey, MasterKey } from '../keys/master-key.js';
import { subjectId, type KeyRecord, type PartitionKeys } from '../keys/partition-keys.js';
import { renew, subjectSlots, type SubjectSlot } from './subject-slots.js';
import { recordBytes } from '../kafka/transactions.js';
import { deadLetter } from '../kafka/dead-letter.js';
import { aadLength, ENVELOPE_HEADER_BYTES, ENVELOPE_NONCE_AT, ENVELOPE_OVERHEAD, envelopePrefix, writeAadTail } from '../wire/envelope.js';
import { fieldToken } from '../fields/field-envelope.js';
import { pathBytes, scanRecord, type FieldMode, type FieldRecordScan } from '../fields/field-mode.js';
import { JsonValueError, spliceFields, type FieldSpan } from '../fields/json-fields.js';
import { FORGOTTEN_AT_HEADER, isForgetRequest } from '../wire/headers.js';
import { outputRecord, RECORD_BATCH_OVERHEAD, sealedRecordBytes } from './output-records.js';
import { readySubjects } from './ready-subjects.js';
import { encryptSpanBatch } from './span-batch.js';

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

/** The dead-letter reason of a record its output topic cannot take once encrypted. */
const tooLargeReason = (outputBytes: number, maxRecordBytes: number) =>
  `record too large once encrypted: ${outputBytes} bytes, the output topic takes ${maxRecordBytes} (max.message.bytes)`;

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

export interface EncryptedBatch {
  /** The output records, one per input record that was not dead-lettered, in input order. */
  outputs: Message[];
  keyRecords: KeyRecord[];
  forgets: ForgetCarriedOut[];
  deadLetters: Message[];
  /**
   * cryptoNs: time in the batch cipher calls; sealedOffThread: envelopes sealed on the sealing thread;
   * sealedFromFetch: of those, the span path's (span-batch.ts).
   */
  stats: {
    encrypted: number;
    /** Forget requests carried out. */
    forgotten: number;
    /** Of those, the ones that destroyed a live key (a subject's first forget; the copies on other routes find none). */
    keysDestroyed: number;
    keysCreated: number;
    bornShredded: number;
    tombstones: number;
    cryptoNs: number;
    sealedOffThread: number;
    sealedFromFetch: number;
  };
  /**
   * Gives the memory of envelopes sealed on the sealing thread back for reuse: call it once the
   * outputs are written; they are empty afterwards (see ThreadSealed.release). Nothing to give back
   * when absent.
   */
  release?: () => void;
}

/** kafkajs writes Buffers only: a Buffer as it is (no copy: nothing changes it), other bytes copied into one. */
const asKafkaBytes = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));

export function keyRecordMessage(record: KeyRecord, partition: number): Message {
  return {
    key: asKafkaBytes(record.subject),
    value: record.value ? asKafkaBytes(record.value) : null,
    partition,
    timestamp: String(record.timestamp),
    headers: record.forgottenAt !== undefined ? { [FORGOTTEN_AT_HEADER]: String(record.forgottenAt) } : undefined,
  };
}

/**
 * The envelopes of one algorithm to seal in one call (an envelope batch), and the output record each
 * belongs to. Its item arrays are made at the batch's size up front, typed where they hold numbers:
 * arrays grown a push at a time left several times their size in garbage (in place, the encryptor
 * allocated 396 bytes of heap a record with them, 235 without; end to end no change showed).
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
  text: string;
  spans: FieldSpan[];
  group: PendingSeals;
  /** Index of the record's first field in the group (its fields are consecutive). */
  firstItem: number;
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

/** What the first pass over a batch finds out, per record. */
interface BatchPlan {
  batch: number;
  /** Each record's subject and its slot (undefined: no subject, or field mode could not read the record). */
  subjectOf: (Uint8Array | undefined)[];
  slotOf: (SubjectSlot | undefined)[];
  /** The distinct subjects' bytes and map keys (as PartitionKeys.load takes them), and their slots. */
  subjects: Uint8Array[];
  ids: string[];
  slots: SubjectSlot[];
  /** Field mode: the record's JSON scan, or why it cannot be processed. */
  scanOf: (FieldRecordScan | undefined)[];
  problemOf: (string | undefined)[];
  /** Bytes of every envelope's associated data. */
  aadBytes: number;
  /** Envelopes of the batch at most: a record's, or in field mode its selected fields'. */
  items: number;
}

/**
 * Encrypts one batch. Returns the result itself, not a promise, when every subject's key is in
 * memory and the batch is sealed in-thread (the usual case at steady rates): a promise would make the
 * batch wait for whatever else is queued on the event loop (other partitions' fetches), which showed
 * as latency. A large batch sealed on the sealing thread returns a promise.
 */
export function encryptBatch(messages: readonly KafkaMessage[], context: EncryptContext): EncryptedBatch | Promise<EncryptedBatch> {
  const spanned = encryptSpanBatch(messages, context);
  if (spanned !== undefined) return spanned;
  const plan = planBatch(messages, context);
  const loading = context.keys.load(plan.subjects, plan.ids);
  return loading ? loading.then(() => sealBatch(messages, context, plan)) : sealBatch(messages, context, plan);
}

function planBatch(messages: readonly KafkaMessage[], { fields, keys }: EncryptContext): BatchPlan {
  const slots = subjectSlots(keys);
  const batch = slots.beginBatch();
  const subjectOf: (Uint8Array | undefined)[] = new Array(messages.length);
  const slotOf: (SubjectSlot | undefined)[] = new Array(messages.length);
  const subjects: Uint8Array[] = [];
  const ids: string[] = [];
  const distinctSlots: SubjectSlot[] = [];
  const scanOf: (FieldRecordScan | undefined)[] = fields ? new Array(messages.length) : [];
  const problemOf: (string | undefined)[] = fields ? new Array(messages.length) : [];
  let aadBytes = 0;
  let items = fields ? 0 : messages.length;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    let subject: Uint8Array | undefined;
    if (fields && message.value !== null && !isForgetRequest(message.headers)) {
      try {
        const scan = (scanOf[i] = scanRecord(message.value, fields));
        subject = scan.subjectBytes;
        const subjectLength = subject?.length ?? message.key?.length ?? 0;
        for (const span of scan.spans) aadBytes += aadLength(subjectLength, pathBytes(span.path));
        items += scan.spans.length;
      } catch (err) {
        if (!(err instanceof JsonValueError)) throw err;
        problemOf[i] = err.message;
        continue;
      }
    }
    if (!subject) {
      const key = message.key;
      if (!key || key.length === 0) continue;
      subject = key;
    }
    const id = subjectId(subject);
    const slot = slots.take(id, batch);
    if (slot.records++ === 0) {
      subjects.push(subject);
      ids.push(id);
      distinctSlots.push(slot);
    }
    subjectOf[i] = subject;
    slotOf[i] = slot;
    if (!fields) aadBytes += aadLength(subject.length);
  }
  return { batch, subjectOf, slotOf, subjects, ids, slots: distinctSlots, scanOf, problemOf, aadBytes, items };
}

/** The second pass, once every subject of the batch is loaded: keys, seals, outputs. */
function sealBatch(messages: readonly KafkaMessage[], context: EncryptContext, plan: BatchPlan): EncryptedBatch | Promise<EncryptedBatch> {
  return withAadArena(plan.aadBytes, (aadArena) => sealBatchIn(aadArena, messages, context, plan));
}

/**
 * sealBatch with its associated-data arena: header || subject [|| 0x00 || field path] of every envelope.
 * A promise when an envelope batch went to the sealing thread (the arena has been copied by then).
 */
function sealBatchIn(aadArena: Uint8Array, messages: readonly KafkaMessage[], context: EncryptContext, plan: BatchPlan): EncryptedBatch | Promise<EncryptedBatch> {
  const { keys, partition, topic, fields } = context;
  const { batch, subjectOf, slotOf, scanOf, problemOf } = plan;
  // (made at the batch's size, then cut to the records written: see PendingSeals)
  const outputs = new Array<Message>(messages.length);
  let outputCount = 0;
  const result: EncryptedBatch = {
    outputs,
    keyRecords: [],
    forgets: [],
    deadLetters: [],
    stats: { encrypted: 0, forgotten: 0, keysDestroyed: 0, keysCreated: 0, bornShredded: 0, tombstones: 0, cryptoNs: 0, sealedOffThread: 0, sealedFromFetch: 0 },
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
      result.deadLetters.push(deadLetter(message, topic, partition, reason));
      continue;
    }
    if (slot.batch !== batch) renew(slot, batch); // (another batch of these keys overlapped this one)
    if (isForgetRequest(message.headers)) {
      const destroyed = keys.entry(subject, slot.id).wrapped;
      if (destroyed) result.stats.keysDestroyed++;
      const forgotten = keys.forget(subject, Number(message.timestamp));
      result.forgets.push({
        subject,
        offset: message.offset,
        timestamp: Number(message.timestamp),
        keyRecordIndex: result.keyRecords.length,
        keyIds: destroyed ? [Buffer.from(destroyed.subarray(2, 10)).toString('hex')] : [],
      });
      slot.looked = true;
      slot.key = undefined;
      slot.forgottenAt = forgotten.forgottenAt;
      slot.keyIndex = -1;
      result.keyRecords.push(forgotten);
      outputs[outputCount++] = outputRecord(message, partition, null); // the forget marker, for consumers to purge projections
      result.stats.forgotten++;
      continue;
    }
    if (message.value === null) {
      outputs[outputCount++] = outputRecord(message, partition, null); // a tombstone stays a tombstone
      result.stats.tombstones++;
      continue;
    }

    const scan = scanOf[i];
    const spans = scan?.spans;
    // (field mode: checked again once the fields are sealed; a record with none is passed as it is)
    const outputBytes = spans?.length === 0 ? recordBytes(message as Message) + RECORD_BATCH_OVERHEAD : sealedRecordBytes(message);
    if ((!fields || spans?.length === 0) && outputBytes > context.maxRecordBytes) {
      result.deadLetters.push(deadLetter(message, topic, partition, tooLargeReason(outputBytes, context.maxRecordBytes)));
      continue;
    }
    if (spans && spans.length === 0) {
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
      result.deadLetters.push(deadLetter(message, topic, partition, `key unavailable: ${(err as Error).message}`));
      continue;
    }
    let group = lastGroup;
    if (group?.algorithm !== dataKey.algorithm) {
      group = toSeal.get(dataKey.algorithm);
      if (!group) toSeal.set(dataKey.algorithm, (group = pendingSeals(dataKey.algorithm, plan.items)));
      lastGroup = group;
    }
    // (the subject's key index, found once: a born-shredded record's key is its own)
    let keyIndex: number;
    if (bornShredded) keyIndex = group.keys.indexOf(dataKey);
    else if (slot.keyIndex >= 0) keyIndex = slot.keyIndex;
    else keyIndex = slot.keyIndex = group.keys.indexOf(dataKey);
    const outputIndex = outputCount;
    if (scan && spans) {
      pendingFields.push({ outputIndex, message, text: scan.text, spans, group, firstItem: group.count });
      for (const span of spans) {
        const plaintext = Buffer.from(scan.text.slice(span.start, span.end), 'utf8');
        aadOffset = addSeal(group, aadArena, aadOffset, keyIndex, subject, plaintext, outputIndex, pathBytes(span.path));
      }
    } else {
      aadOffset = addSeal(group, aadArena, aadOffset, keyIndex, subject, message.value, outputIndex);
    }
    outputs[outputCount++] = outputRecord(message, partition, null);
    result.stats.encrypted++;
  }
  outputs.length = outputCount;
  if (!fields && context.sealingThread?.usable) keepReadySubjects(keys, plan);

  const sealedOf = new Map<PendingSeals, Buffer[]>();
  const onThread: Promise<void>[] = [];
  for (const [algorithm, group] of toSeal) {
    // (a literal, not a spread of group: a spread object's shape made every access to it slow, about
    // 25 us a batch, which small batches at low rates pay in latency)
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
 * Keeps the batch's subjects whose keys it looked up, as they stand after it, for the next batches'
 * span path (ready-subjects.ts; refreshed first, so what this batch changed is dropped, then added
 * again as it now stands).
 */
function keepReadySubjects(keys: PartitionKeys, plan: BatchPlan): void {
  const ready = readySubjects(keys);
  for (let k = 0; k < plan.slots.length; k++) {
    const slot = plan.slots[k];
    if (slot.batch === plan.batch && slot.looked && slot.key) ready.add(plan.subjects[k], slot.key, slot.forgottenAt);
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
    const tooLarge = new Set<number>();
    for (const pending of pendingFields) {
      const sealed = sealedOf.get(pending.group)!;
      const tokens = pending.spans.map((_, k) => fieldToken(sealed[pending.firstItem + k]));
      const value = Buffer.from(spliceFields(pending.text, pending.spans, tokens), 'utf8');
      const output = result.outputs[pending.outputIndex];
      output.value = value;
      const outputBytes = recordBytes(output) + RECORD_BATCH_OVERHEAD;
      if (outputBytes > context.maxRecordBytes) {
        result.deadLetters.push(deadLetter(pending.message, topic, partition, tooLargeReason(outputBytes, context.maxRecordBytes)));
        tooLarge.add(pending.outputIndex);
        result.stats.encrypted--;
      }
    }
    if (tooLarge.size > 0) result.outputs = result.outputs.filter((_, index) => !tooLarge.has(index));
  }
  return result;
}
