// Turns one input batch (one topic-partition) into what its transaction writes: encrypted records in
// input order, key records (new keys, tombstones) and dead letters. All records of the batch are sealed
// in one call to the batch cipher of their key's algorithm.
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { AeadRegistry, AlgorithmId, SealItem } from '../crypto/index.js';
import { randomFillSync } from 'node:crypto';
import { type DataKey, MasterKey } from '../keys/master-key.js';
import { subjectId, type KeyRecord, type PartitionKeys } from '../keys/partition-keys.js';
import { recordBytes } from '../kafka/transactions.js';
import { ENVELOPE_HEADER_BYTES, ENVELOPE_NONCE_BYTES, ENVELOPE_OVERHEAD, ENVELOPE_VERSION } from '../wire/envelope.js';
import { ERROR_HEADER, FORGOTTEN_AT_HEADER, isForgetRequest, SOURCE_HEADER } from '../wire/headers.js';

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
  stats: { encrypted: number; forgotten: number; keysCreated: number; bornShredded: number; tombstones: number };
}

export function deadLetter(message: KafkaMessage, topic: string, partition: number, reason: string): Message {
  return {
    key: message.key,
    value: message.value,
    timestamp: message.timestamp,
    headers: { ...(message.headers as IHeaders), [ERROR_HEADER]: reason, [SOURCE_HEADER]: `${topic}/${partition}/${message.offset}` },
  };
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

interface PendingSeal {
  outputIndex: number;
  item: SealItem;
}

export async function encryptBatch(messages: readonly KafkaMessage[], context: EncryptContext): Promise<EncryptedBatch> {
  const { keys, partition, topic } = context;
  const result: EncryptedBatch = {
    outputs: [],
    keyRecords: [],
    deadLetters: [],
    stats: { encrypted: 0, forgotten: 0, keysCreated: 0, bornShredded: 0, tombstones: 0 },
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
    ids.push((idOf[i] = subjectId(subject)));
  }
  const loading = keys.load(subjects, ids);
  if (loading) await loading;

  const toSeal = new Map<AlgorithmId, PendingSeal[]>();
  // one CSPRNG call per batch: 12 random bytes for each record's nonce
  const nonces = randomFillSync(new Uint8Array(messages.length * ENVELOPE_NONCE_BYTES));
  // Every record's associated data (header || subject) in one allocation; its first 22 bytes are
  // also the envelope header placed before the ciphertext.
  let aadBytes = 0;
  for (const m of messages) aadBytes += ENVELOPE_HEADER_BYTES + (m.key?.length ?? 0);
  const aadArena = new Uint8Array(aadBytes);
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
    const passThrough = (value: Buffer | null): Message => ({
      key: message.key,
      value,
      partition,
      timestamp: message.timestamp,
      headers: message.headers as IHeaders,
    });
    if (isForgetRequest(message.headers)) {
      result.keyRecords.push(keys.forget(subject, Number(message.timestamp)));
      result.outputs.push(passThrough(null)); // the forget marker, for consumers to purge projections
      result.stats.forgotten++;
      continue;
    }
    if (message.value === null) {
      result.outputs.push(passThrough(null)); // a tombstone stays a tombstone
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
    for (let b = 0, n = i * ENVELOPE_NONCE_BYTES; b < ENVELOPE_NONCE_BYTES; b++) aad[10 + b] = nonces[n + b];
    for (let b = 0; b < subject.length; b++) aad[ENVELOPE_HEADER_BYTES + b] = subject[b];
    const pending = toSeal.get(dataKey.algorithm) ?? [];
    toSeal.set(dataKey.algorithm, pending);
    pending.push({
      outputIndex: result.outputs.length,
      item: { key: dataKey.key, nonce: aad.subarray(10, 22), aad, plaintext: message.value, prefix: aad.subarray(0, ENVELOPE_HEADER_BYTES) },
    });
    result.outputs.push(passThrough(null));
    result.stats.encrypted++;
  }

  for (const [algorithm, pending] of toSeal) {
    const sealed = context.ciphers.get(algorithm).sealBatch(pending.map((p) => p.item));
    pending.forEach((p, i) => {
      const value = sealed[i];
      result.outputs[p.outputIndex].value = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    });
  }
  return result;
}
