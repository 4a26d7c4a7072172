// Opens one batch of encrypted records (one topic-partition): each record's status (readable, shredded
// or a forget marker) and plaintext, and the records that cannot be opened, as dead letters with
// their reason. All readable records of the batch are opened in one call to the batch cipher of
// their algorithm; nothing unauthenticated is ever returned.
import type { KafkaMessage, Message } from 'kafkajs';
import { AES_256_GCM, CHACHA20_POLY1305, type AeadRegistry, type AlgorithmId, type OpenItem } from '../crypto/index.js';
import type { DataKey } from '../keys/master-key.js';
import { subjectId, type PartitionKeys } from '../keys/partition-keys.js';
import { deadLetter } from '../kafka/dead-letter.js';
import { ENVELOPE_HEADER_BYTES, ENVELOPE_OVERHEAD, ENVELOPE_VERSION, EnvelopeError, KEY_ID_BYTES, parseEnvelope } from '../wire/envelope.js';
import { isForgetRequest } from '../wire/headers.js';

/**
 * `ok`: the plaintext (or a tombstone passed through, value null). `shredded`: the subject's key for
 * this record is gone (forgotten), value null. `forget`: the subject was just forgotten, value null:
 * purge what was derived from it.
 */
export type RecordStatus = 'ok' | 'shredded' | 'forget';

export interface DecryptedRecord {
  message: KafkaMessage;
  status: RecordStatus;
  value: Buffer | null;
}

export interface DecryptContext {
  topic: string;
  partition: number;
  keys: PartitionKeys;
  ciphers: AeadRegistry;
  /** Waits until the key store holds every key committed so far (see PartitionTask.catchUpKeys). */
  catchUpKeys: () => Promise<void>;
}

export interface DecryptedBatch {
  /** One per input record that was not dead-lettered, in input order. */
  records: DecryptedRecord[];
  deadLetters: Message[];
  /** cryptoNs: time in the batch cipher calls. */
  stats: { decrypted: number; shredded: number; forgets: number; keyWaits: number; cryptoNs: number };
}

interface Sealed {
  index: number;
  /** The record key and value as plain views (monomorphic byte access on the hot path). */
  subject: Uint8Array;
  envelope: Uint8Array;
  subjectKey: string;
  key?: DataKey;
}

const view = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

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

/** A well-formed v1 envelope header (the common case, checked without allocating); else parseEnvelope says why not. */
function isEnvelope(value: Uint8Array): boolean {
  return value.length >= ENVELOPE_OVERHEAD && value[0] === ENVELOPE_VERSION && (value[1] === CHACHA20_POLY1305 || value[1] === AES_256_GCM);
}

export async function decryptBatch(messages: readonly KafkaMessage[], context: DecryptContext): Promise<DecryptedBatch> {
  const { keys, topic, partition } = context;
  const result: DecryptedBatch = { records: [], deadLetters: [], stats: { decrypted: 0, shredded: 0, forgets: 0, keyWaits: 0, cryptoNs: 0 } };
  const slots: (DecryptedRecord | undefined)[] = new Array(messages.length);
  const sealedRecords: Sealed[] = [];
  let aadBytes = 0;
  const fail = (index: number, reason: string) => {
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
    if (!message.key || message.key.length === 0) {
      fail(i, 'no subject: the record key is empty or null');
      continue;
    }
    const envelope = view(message.value);
    if (!isEnvelope(envelope)) {
      try {
        parseEnvelope(envelope);
        throw new Error('unreachable: a malformed envelope parsed');
      } catch (err) {
        if (!(err instanceof EnvelopeError)) throw err;
        fail(i, err.message);
        continue;
      }
    }
    sealedRecords.push({ index: i, subject: view(message.key), envelope, subjectKey: subjectId(message.key) });
    aadBytes += ENVELOPE_HEADER_BYTES + message.key.length;
  }

  const lookUp = async (records: Sealed[]): Promise<Sealed[]> => {
    const loading = keys.load(records.map((r) => r.subject), records.map((r) => r.subjectKey));
    if (loading) await loading;
    const missing: Sealed[] = [];
    for (const record of records) {
      try {
        record.key = keyFor(keys, record);
        if (!record.key) missing.push(record);
      } catch (err) {
        fail(record.index, `key unavailable: ${(err as Error).message}`); // e.g. wrapped under another master key
        record.index = -1;
      }
    }
    return missing;
  };
  let missing = await lookUp(sealedRecords);
  if (missing.length > 0) {
    // The race between a record and its key: the key may be committed but not yet read. Only once
    // the keys partition has been read to its end now, after the record was read, is a missing key
    // known to be destroyed.
    await context.catchUpKeys();
    result.stats.keyWaits++;
    missing = await lookUp(missing);
  }
  for (const record of missing) {
    if (record.index < 0) continue;
    slots[record.index] = { message: messages[record.index], status: 'shredded', value: null };
    result.stats.shredded++;
  }

  // every record's associated data (its envelope header || subject) in one allocation
  const aadArena = new Uint8Array(aadBytes);
  let aadOffset = 0;
  const toOpen = new Map<AlgorithmId, { items: OpenItem[]; indexes: number[] }>();
  for (const record of sealedRecords) {
    if (record.index < 0 || !record.key) continue;
    const { envelope, subject } = record;
    const aad = aadArena.subarray(aadOffset, (aadOffset += ENVELOPE_HEADER_BYTES + subject.length));
    for (let b = 0; b < ENVELOPE_HEADER_BYTES; b++) aad[b] = envelope[b];
    for (let b = 0; b < subject.length; b++) aad[ENVELOPE_HEADER_BYTES + b] = subject[b];
    const algorithm = envelope[1] as AlgorithmId;
    let group = toOpen.get(algorithm);
    if (!group) toOpen.set(algorithm, (group = { items: [], indexes: [] }));
    group.items.push({ key: record.key.key, nonce: aad.subarray(10, ENVELOPE_HEADER_BYTES), aad, sealed: envelope.subarray(ENVELOPE_HEADER_BYTES) });
    group.indexes.push(record.index);
  }
  for (const [algorithm, { items, indexes }] of toOpen) {
    const started = process.hrtime.bigint();
    const opened = context.ciphers.get(algorithm).openBatch(items);
    result.stats.cryptoNs += Number(process.hrtime.bigint() - started);
    for (let k = 0; k < opened.length; k++) {
      const plaintext = opened[k];
      if (!plaintext) {
        fail(indexes[k], 'authentication failed: the record was altered, forged, or moved to another subject');
        continue;
      }
      slots[indexes[k]] = { message: messages[indexes[k]], status: 'ok', value: Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength) };
      result.stats.decrypted++;
    }
  }
  for (const slot of slots) if (slot) result.records.push(slot);
  return result;
}
