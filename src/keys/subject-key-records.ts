// One subject's records in the keys topic, for the tools that answer about one subject (`export`,
// `verify-erasure`): the records under its subject id, and, with pseudonymous record keys
// (SHREDDER_RECORD_KEYS=pseudonym), the pseudonymous values (v2) whose sealed subject id is its, and
// the tombstones under their pseudonyms. Finding those takes the master keys; only values whose sealed
// subject has the subject id's length are opened.
import type { Kafka, KafkaMessage } from 'kafkajs';
import { readUpTo, type PartitionEnd } from '../kafka/read-to-end.js';
import { PSEUDONYMOUS_KEY_OVERHEAD } from '../wire/wrapped-key.js';
import type { Keyring } from './keyring.js';

export interface SubjectKeyRecord {
  offset: number;
  message: KafkaMessage;
  /** The pseudonym it is written under; undefined: under the subject id. */
  pseudonym?: Uint8Array;
}

/** The subject's keys-topic records in each of `ends`' partitions, in offset order. Without `keyring`, only those under its subject id. */
export async function subjectKeyRecords(kafka: Kafka, keysTopic: string, subject: Uint8Array, ends: readonly PartitionEnd[], keyring: Keyring | undefined, groupPrefix: string): Promise<Map<number, SubjectKeyRecord[]>> {
  const found = new Map<number, SubjectKeyRecord[]>(ends.map((e) => [e.partition, []]));
  const pseudonyms = new Map<number, Buffer[]>(ends.map((e) => [e.partition, []]));
  const wanted = Buffer.from(subject.buffer, subject.byteOffset, subject.byteLength);
  const sealedLength = PSEUDONYMOUS_KEY_OVERHEAD + subject.length;
  await readUpTo(kafka, keysTopic, ends, (partition, messages) => {
    const records = found.get(partition)!;
    const known = pseudonyms.get(partition)!;
    for (const message of messages) {
      const key = message.key;
      if (!key || key.length === 0) continue;
      if (wanted.equals(key)) {
        records.push({ offset: Number(message.offset), message });
      } else if (message.value === null) {
        const pseudonym = known.find((p) => p.equals(key));
        if (pseudonym) records.push({ offset: Number(message.offset), message, pseudonym });
      } else if (keyring && message.value.length === sealedLength && wanted.equals(keyring.sealedSubject(message.value, key) ?? Buffer.alloc(0))) {
        if (!known.some((p) => p.equals(key))) known.push(key);
        records.push({ offset: Number(message.offset), message, pseudonym: key });
      }
    }
  }, { groupPrefix });
  return found;
}
