// Reading the encrypted log in tests, the way a consumer would: the keys topic as a table (the latest
// value of each subject), each record opened with its subject's key through the library.
import type { Kafka, KafkaMessage } from 'kafkajs';
import { loadAeadRegistry, type AeadRegistry } from '../../src/crypto/index.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { envelopeAad, parseEnvelope } from '../../src/wire/envelope.js';
import { readTopic } from './kafka.js';

/** Latest keys-topic value by partition and subject: keys live beside their subject's partition. */
export type KeysTable = Map<string, Buffer | null>;

const tableKey = (partition: number, subject: Buffer) => `${partition}/${subject.toString('latin1')}`;

export async function readKeysTable(kafka: Kafka, keysTopic: string): Promise<KeysTable> {
  const table: KeysTable = new Map();
  for (const [partition, records] of await readTopic(kafka, keysTopic)) {
    for (const record of records) if (record.key) table.set(tableKey(partition, record.key), record.value);
  }
  return table;
}

export function liveWrappedKey(table: KeysTable, partition: number, subject: string): Buffer | null | undefined {
  return table.get(tableKey(partition, Buffer.from(subject)));
}

let ciphers: AeadRegistry | undefined;

/** The plaintext of an encrypted record, or 'shredded' when its subject has no matching live key. */
export async function decryptRecord(record: KafkaMessage, partition: number, table: KeysTable, masterKey: Buffer, masterKeyId = 1): Promise<Buffer | 'shredded'> {
  ciphers ??= await loadAeadRegistry();
  if (!record.key || !record.value) throw new Error('not an encrypted record');
  const subject = new Uint8Array(record.key);
  const envelope = parseEnvelope(new Uint8Array(record.value));
  const wrapped = table.get(tableKey(partition, record.key));
  if (!wrapped) return 'shredded';
  const dataKey = new MasterKey(masterKey, masterKeyId).unwrap(subject, new Uint8Array(wrapped));
  if (Buffer.compare(Buffer.from(dataKey.keyId), Buffer.from(envelope.keyId)) !== 0) return 'shredded';
  const [plaintext] = ciphers.get(envelope.algorithm).openBatch([
    { key: dataKey.key, nonce: envelope.nonce, aad: envelopeAad(envelope.header, subject), sealed: envelope.sealed },
  ]);
  if (!plaintext) throw new Error('authentication failed');
  return Buffer.from(plaintext);
}
