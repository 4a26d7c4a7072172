// Opens one batch of encrypted records (one topic-partition): each record's status (readable, shredded
// or a forget marker) and plaintext, and the records that cannot be opened, as dead letters with
// their reason. Every envelope of the batch (whole values, or every encrypted field of every record)
// is opened in one call to the batch cipher of its algorithm; nothing unauthenticated is returned.
import type { KafkaMessage, Message } from 'kafkajs';
import { AES_256_GCM, CHACHA20_POLY1305, type AeadRegistry, type AlgorithmId } from '../crypto/index.js';
import { EnvelopeKeys, withAadArena } from '../crypto/envelope-batch.js';
import { fieldEnvelope } from '../fields/field-envelope.js';
import type { FieldMode } from '../fields/field-mode.js';
import { pathBytes, scanRecord } from '../fields/field-mode.js';
import { JsonValueError, spliceFields, type FieldSpan } from '../fields/json-fields.js';
import type { DataKey } from '../keys/master-key.js';
import { subjectId, type PartitionKeys } from '../keys/partition-keys.js';
import { deadLetter } from '../kafka/dead-letter.js';
import { aadLength, ENVELOPE_HEADER_BYTES, ENVELOPE_NONCE_AT, ENVELOPE_OVERHEAD, ENVELOPE_VERSION, EnvelopeError, KEY_ID_BYTES, parseEnvelope, writeAadTail } from '../wire/envelope.js';
import { isForgetRequest } from '../wire/headers.js';

/**
 * `ok`: the plaintext (or a tombstone passed through, value null). `shredded`: the subject's key for
 * this record is gone (forgotten): value null, or in field mode the record with its encrypted fields
 * set to the shredded value (`shreddedFields` names them). `forget`: the subject was just forgotten,
 * value null: purge what was derived from it.
 */
export type RecordStatus = 'ok' | 'shredded' | 'forget';

export interface DecryptedRecord {
  message: KafkaMessage;
  status: RecordStatus;
  value: Buffer | null;
  /** Field mode: the paths of the fields that could not be opened because their key is gone. */
  shreddedFields?: string[];
}

export interface DecryptContext {
  topic: string;
  partition: number;
  keys: PartitionKeys;
  ciphers: AeadRegistry;
  /** Waits until the key store holds every key committed so far (see PartitionTask.catchUpKeys). */
  catchUpKeys: () => Promise<void>;
  /** Field-level encryption; undefined: whole values. */
  fields?: FieldMode;
}

export interface DecryptedBatch {
  /** One per input record that was not dead-lettered, in input order. */
  records: DecryptedRecord[];
  deadLetters: Message[];
  /** cryptoNs: time in the batch cipher calls. */
  stats: { decrypted: number; shredded: number; forgets: number; keyWaits: number; cryptoNs: number };
}

/** One envelope to open: a whole value, or one encrypted field of a record. */
interface Sealed {
  index: number;
  subject: Uint8Array;
  envelope: Uint8Array;
  subjectKey: string;
  /** Field mode: the field's path (bound in the associated data) as UTF-8. */
  path?: Uint8Array;
  key?: DataKey;
  plaintext?: Buffer | null;
}

/** Every field set at creation: one object shape on the hot path, whatever is filled in later. */
const sealedEnvelope = (index: number, subject: Uint8Array, envelope: Uint8Array, subjectKey: string, path?: Uint8Array): Sealed =>
  ({ index, subject, envelope, subjectKey, path, key: undefined, plaintext: undefined });

/** Field mode: a record's JSON text and where its encrypted fields are. */
interface FieldRecord {
  text: string;
  spans: FieldSpan[];
  /** The envelope of each span (undefined: the field was never encrypted, left as it is). */
  sealed: (Sealed | undefined)[];
}

/** The envelopes of one algorithm to open in one call (an envelope batch); each distinct key once. */
interface PendingOpens {
  keys: EnvelopeKeys<DataKey, Uint8Array>;
  keyIndexes: number[];
  envelopes: Uint8Array[];
  aadStarts: number[];
  aadLengths: number[];
  sealed: Sealed[];
}

const keyBytes = (dataKey: DataKey) => dataKey.key;
const pendingOpens = (): PendingOpens => ({ keys: new EnvelopeKeys(keyBytes), keyIndexes: [], envelopes: [], aadStarts: [], aadLengths: [], sealed: [] });

class NoSubject extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The subject's live key if it is the one that sealed the envelope; undefined: another generation, or none. */
function keyFor(keys: PartitionKeys, sealed: Sealed): DataKey | undefined {
  const live = keys.liveKey(sealed.subject, sealed.subjectKey);
  if (!live) return undefined;
  const envelope = sealed.envelope;
  if (live.algorithm !== envelope[1]) return undefined;
  const keyId = live.keyId;
  for (let b = 0; b < KEY_ID_BYTES; b++) if (keyId[b] !== envelope[2 + b]) return undefined;
  return live;
}

/** Throws EnvelopeError unless `value` is a v1 envelope of a known algorithm (checked without allocating first). */
function checkEnvelope(value: Uint8Array): void {
  const ok = value.length >= ENVELOPE_OVERHEAD && value[0] === ENVELOPE_VERSION && (value[1] === CHACHA20_POLY1305 || value[1] === AES_256_GCM);
  if (!ok) parseEnvelope(value); // throws, saying what is wrong
}

/**
 * Opens one batch. Returns the result itself, not a promise, when every key the batch needs is in
 * memory (the usual case): a promise would make the batch wait for whatever else is queued on the
 * event loop (other partitions' fetches), which showed as latency.
 */
export function decryptBatch(messages: readonly KafkaMessage[], context: DecryptContext): DecryptedBatch | Promise<DecryptedBatch> {
  const { keys, topic, partition, fields } = context;
  const result: DecryptedBatch = { records: [], deadLetters: [], stats: { decrypted: 0, shredded: 0, forgets: 0, keyWaits: 0, cryptoNs: 0 } };
  const slots: (DecryptedRecord | undefined)[] = new Array(messages.length);
  const failed: boolean[] = new Array(messages.length);
  const sealedAll: Sealed[] = [];
  const fieldRecords = new Map<number, FieldRecord>();
  let aadBytes = 0;
  const fail = (index: number, reason: string) => {
    if (failed[index]) return;
    failed[index] = true;
    slots[index] = undefined;
    result.deadLetters.push(deadLetter(messages[index], topic, partition, reason));
  };

  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    if (message.value === null) {
      // a forget marker, or a tombstone the encryptor passed through
      const forget = isForgetRequest(message.headers);
      slots[i] = { message, status: forget ? 'forget' : 'ok', value: null };
      if (forget) result.stats.forgets++;
      continue;
    }
    try {
      if (!fields) {
        if (!message.key || message.key.length === 0) throw new NoSubject('no subject: the record key is empty or null');
        const envelope = message.value;
        checkEnvelope(envelope);
        sealedAll.push(sealedEnvelope(i, message.key, envelope, subjectId(message.key)));
        aadBytes += aadLength(message.key.length);
        continue;
      }
      const { text, spans, subjectBytes } = scanRecord(message.value, fields);
      const subject = subjectBytes ?? (message.key?.length ? message.key : undefined);
      if (!subject) throw new NoSubject('no subject: the record key is empty or null');
      const record: FieldRecord = { text, spans, sealed: [] };
      const subjectKey = subjectId(subject);
      for (const span of spans) {
        const envelope = fieldEnvelope(text.slice(span.start, span.end));
        if (!envelope) {
          record.sealed.push(undefined);
          continue;
        }
        checkEnvelope(envelope);
        const path = pathBytes(span.path);
        const sealed = sealedEnvelope(i, subject, envelope, subjectKey, path);
        record.sealed.push(sealed);
        sealedAll.push(sealed);
        aadBytes += aadLength(subject.length, path);
      }
      fieldRecords.set(i, record);
    } catch (err) {
      if (!(err instanceof EnvelopeError) && !(err instanceof JsonValueError) && !(err instanceof NoSubject)) throw err;
      fail(i, err.message);
    }
  }

  const load = (candidates: Sealed[]) => keys.load(candidates.map((r) => r.subject), candidates.map((r) => r.subjectKey));
  /** Gives each candidate its key (once loaded); returns those without one. */
  const assignKeys = (candidates: Sealed[]): Sealed[] => {
    const missing: Sealed[] = [];
    for (const sealed of candidates) {
      try {
        sealed.key = keyFor(keys, sealed);
        if (!sealed.key) missing.push(sealed);
      } catch (err) {
        fail(sealed.index, `key unavailable: ${(err as Error).message}`); // e.g. wrapped under another master key
      }
    }
    return missing;
  };
  // The race between a record and its key: the key may be committed but not yet read. Only once the
  // keys partition has been read to its end now, after the record was read, is a missing key known
  // to be destroyed (those envelopes stay without a key: shredded).
  const catchUpThenOpen = async (): Promise<DecryptedBatch> => {
    await context.catchUpKeys();
    result.stats.keyWaits++;
    const retry = sealedAll.filter((s) => !s.key && !failed[s.index]);
    const loading = load(retry);
    if (loading) await loading;
    assignKeys(retry);
    return open();
  };
  const loading = load(sealedAll);
  if (loading) return loading.then(() => (assignKeys(sealedAll).length > 0 ? catchUpThenOpen() : open()));
  return assignKeys(sealedAll).length > 0 ? catchUpThenOpen() : open();

  /** Opens every envelope that has its key, then sorts out each record. */
  function open(): DecryptedBatch {
    withAadArena(aadBytes, openEnvelopes);
    return sortOut();
  }

  /** Opens every envelope that has its key, in one envelope batch per algorithm. */
  function openEnvelopes(aadArena: Uint8Array): void {
    // (every envelope's associated data, header || subject [|| 0x00 || path], in the arena)
    let aadOffset = 0;
    // the envelopes of each algorithm, as one envelope batch
    const toOpen = new Map<AlgorithmId, PendingOpens>();
    for (const sealed of sealedAll) {
      if (!sealed.key || failed[sealed.index]) continue;
      const { envelope, subject, path } = sealed;
      const length = aadLength(subject.length, path);
      // (the first 22 bytes stay empty: the cipher puts each envelope's own header there)
      writeAadTail(aadArena, subject, path, aadOffset + ENVELOPE_HEADER_BYTES);
      const algorithm = envelope[1] as AlgorithmId;
      let group = toOpen.get(algorithm);
      if (!group) toOpen.set(algorithm, (group = pendingOpens()));
      group.keyIndexes.push(group.keys.indexOf(sealed.key));
      group.envelopes.push(envelope);
      group.aadStarts.push(aadOffset);
      group.aadLengths.push(length);
      group.sealed.push(sealed);
      aadOffset += length;
    }
    for (const [algorithm, group] of toOpen) {
      const started = process.hrtime.bigint();
      const { keyIndexes, envelopes, aadStarts, aadLengths } = group;
      // (a literal, not a spread: see encryptBatch)
      const opened = context.ciphers.get(algorithm).openEnvelopes({ prefixBytes: ENVELOPE_NONCE_AT, aad: aadArena, keys: group.keys.keys, keyIndexes, envelopes, aadStarts, aadLengths });
      result.stats.cryptoNs += Number(process.hrtime.bigint() - started);
      for (let k = 0; k < opened.length; k++) {
        const sealed = group.sealed[k];
        sealed.plaintext = opened[k];
        if (!opened[k]) fail(sealed.index, `authentication failed: the ${sealed.path ? 'field' : 'record'} was altered, forged, or moved to another ${sealed.path ? 'field or subject' : 'subject'}`);
      }
    }
  }

  /** Each record's outcome, in input order, once its envelopes are opened. */
  function sortOut(): DecryptedBatch {
    if (!fields) {
      for (const sealed of sealedAll) {
        const { index, plaintext } = sealed;
        if (failed[index]) continue;
        if (!sealed.key) {
          slots[index] = { message: messages[index], status: 'shredded', value: null };
          result.stats.shredded++;
          continue;
        }
        slots[index] = { message: messages[index], status: 'ok', value: plaintext! };
        result.stats.decrypted++;
      }
    } else {
      for (const [index, record] of fieldRecords) {
        if (failed[index]) continue;
        const shreddedFields: string[] = [];
        let replacements: string[];
        try {
          replacements = record.spans.map((span, k) => {
            const sealed = record.sealed[k];
            if (!sealed) return record.text.slice(span.start, span.end); // never encrypted: as it is
            if (!sealed.key) {
              shreddedFields.push(span.path.text);
              return fields.shreddedValue;
            }
            return utf8.decode(sealed.plaintext!);
          });
        } catch {
          fail(index, 'a decrypted field is not valid UTF-8 JSON text');
          continue;
        }
        const value = Buffer.from(spliceFields(record.text, record.spans, replacements), 'utf8');
        if (shreddedFields.length > 0) {
          slots[index] = { message: messages[index], status: 'shredded', value, shreddedFields };
          result.stats.shredded++;
        } else {
          slots[index] = { message: messages[index], status: 'ok', value };
          result.stats.decrypted++;
        }
      }
    }
    for (const slot of slots) if (slot) result.records.push(slot);
    return result;
  }
}
