// Turns one input batch (one topic-partition) into what its transaction writes: encrypted records in
// input order, key records (new keys, tombstones) and dead letters. All records of the batch are sealed
// in one call to the batch cipher of their key's algorithm.
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { AeadRegistry, AlgorithmId, SealItem } from '../crypto/index.js';
import { randomFillSync } from 'node:crypto';
import { type DataKey, MasterKey } from '../keys/master-key.js';
import { subjectId, type KeyRecord, type PartitionKeys } from '../keys/partition-keys.js';
import { recordBytes } from '../kafka/transactions.js';
import { deadLetter } from '../kafka/dead-letter.js';
import { ENVELOPE_HEADER_BYTES, ENVELOPE_OVERHEAD, ENVELOPE_VERSION } from '../wire/envelope.js';
import { FORGOTTEN_AT_HEADER, isForgetRequest } from '../wire/headers.js';

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
}

/** Bytes a record takes in a record batch beyond its key, value and headers (batch header, varints). */
const RECORD_BATCH_OVERHEAD = 100;

export interface EncryptedBatch {
  /** The output records, one per input record that was not dead-lettered, in input order. */
  outputs: Message[];
  keyRecords: KeyRecord[];
  deadLetters: Message[];
  /** cryptoNs: time in the batch cipher calls. */
  stats: { encrypted: number; forgotten: number; keysCreated: number; bornShredded: number; tombstones: number; cryptoNs: number };
}

export function keyRecordMessage(record: KeyRecord, partition: number): Message {
  return {
    key: Buffer.from(record.subject),
    value: record.value ? Buffer.from(record.value) : null,
    partition,
    timestamp: String(record.timestamp),
    headers: record.forgottenAt !== undefined ? { [FORGOTTEN_AT_HEADER]: String(record.forgottenAt) } : undefined,
  };
}

/** The records of one algorithm to seal in one call, and where each result goes. */
interface PendingSeals {
  items: SealItem[];
  outputIndexes: number[];
}

/** The output record of an input record: same key, partition, timestamp and headers. */
function unchanged(message: KafkaMessage, partition: number, value: Buffer | null): Message {
  return { key: message.key, value, partition, timestamp: message.timestamp, headers: message.headers as IHeaders };
}

export async function encryptBatch(messages: readonly KafkaMessage[], context: EncryptContext): Promise<EncryptedBatch> {
  const { keys, partition, topic } = context;
  const result: EncryptedBatch = {
    outputs: [],
    keyRecords: [],
    deadLetters: [],
    stats: { encrypted: 0, forgotten: 0, keysCreated: 0, bornShredded: 0, tombstones: 0, cryptoNs: 0 },
  };
  const view = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  const subjects: Uint8Array[] = [];
  const ids: string[] = [];
  // per record, computed once: its subject bytes and their map key
  const subjectOf: (Uint8Array | undefined)[] = new Array(messages.length);
  const idOf: (string | undefined)[] = new Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const key = messages[i].key;
    if (!key) continue;
    const subject = (subjectOf[i] = view(key));
    subjects.push(subject);
    ids.push((idOf[i] = subjectId(key)));
  }
  const loading = keys.load(subjects, ids);
  if (loading) await loading;

  const toSeal = new Map<AlgorithmId, PendingSeals>();
  // Every record's associated data (header || subject) in one allocation; its first 22 bytes are
  // also the envelope header placed before the ciphertext. One CSPRNG call for the batch fills it,
  // which leaves each header's nonce (bytes 10-21) random; the other bytes are overwritten below.
  let aadBytes = 0;
  for (const m of messages) aadBytes += ENVELOPE_HEADER_BYTES + (m.key?.length ?? 0);
  const aadArena = randomFillSync(new Uint8Array(aadBytes));
  let aadOffset = 0;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    if (!message.key || message.key.length === 0) {
      // (the empty key is also reserved in the keys topic, see segment-roll.ts)
      const reason = message.key ? 'no subject: the record key is empty' : 'no subject: the record key is null';
      result.deadLetters.push(deadLetter(message, topic, partition, reason));
      continue;
    }
    const subject = subjectOf[i]!;
    if (isForgetRequest(message.headers)) {
      result.keyRecords.push(keys.forget(subject, Number(message.timestamp)));
      result.outputs.push(unchanged(message, partition, null)); // the forget marker, for consumers to purge projections
      result.stats.forgotten++;
      continue;
    }
    if (message.value === null) {
      result.outputs.push(unchanged(message, partition, null)); // a tombstone stays a tombstone
      result.stats.tombstones++;
      continue;
    }

    const outputBytes = recordBytes(message as Message) + ENVELOPE_OVERHEAD + RECORD_BATCH_OVERHEAD;
    if (outputBytes > context.maxRecordBytes) {
      const reason = `record too large once encrypted: ${outputBytes} bytes, the output topic takes ${context.maxRecordBytes} (max.message.bytes)`;
      result.deadLetters.push(deadLetter(message, topic, partition, reason));
      continue;
    }

    let dataKey: DataKey | undefined;
    try {
      const known = keys.lookup(subject, idOf[i]);
      if (known.forgottenAt !== undefined && Number(message.timestamp) <= known.forgottenAt) {
        // Produced before its subject was forgotten (on another route, or late): sealed under a key
        // that is never stored, so it is born shredded instead of readable under the new key.
        dataKey = MasterKey.newDataKey(context.algorithm);
        result.stats.bornShredded++;
      } else {
        dataKey = known.key;
        if (!dataKey) {
          const created = keys.createKey(subject, context.algorithm, context.now(), idOf[i]);
          result.keyRecords.push(created.record);
          dataKey = created.key;
          result.stats.keysCreated++;
        }
      }
    } catch (err) {
      result.deadLetters.push(deadLetter(message, topic, partition, `key unavailable: ${(err as Error).message}`));
      continue;
    }
    const aad = aadArena.subarray(aadOffset, aadOffset + ENVELOPE_HEADER_BYTES + subject.length);
    aadOffset += aad.length;
    // byte loops: TypedArray.set() is slow for a handful of bytes from a Buffer
    aad[0] = ENVELOPE_VERSION;
    aad[1] = dataKey.algorithm;
    const keyId = dataKey.keyId;
    for (let b = 0; b < 8; b++) aad[2 + b] = keyId[b];
    for (let b = 0; b < subject.length; b++) aad[ENVELOPE_HEADER_BYTES + b] = subject[b];
    let pending = toSeal.get(dataKey.algorithm);
    if (!pending) toSeal.set(dataKey.algorithm, (pending = { items: [], outputIndexes: [] }));
    pending.items.push({ key: dataKey.key, nonce: aad.subarray(10, 22), aad, plaintext: message.value, prefix: aad.subarray(0, ENVELOPE_HEADER_BYTES) });
    pending.outputIndexes.push(result.outputs.length);
    result.outputs.push(unchanged(message, partition, null));
    result.stats.encrypted++;
  }

  for (const [algorithm, { items, outputIndexes }] of toSeal) {
    const started = process.hrtime.bigint();
    const sealed = context.ciphers.get(algorithm).sealBatch(items);
    result.stats.cryptoNs += Number(process.hrtime.bigint() - started);
    for (let k = 0; k < sealed.length; k++) {
      const value = sealed[k];
      result.outputs[outputIndexes[k]].value = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
  }
  return result;
}
