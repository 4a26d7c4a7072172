// The keys an export needs: one subject's last keys-topic state in each partition it reads, read from
// the keys topic (the source of truth, not any processor's state dir) into key stores of the export's
// own, in a temporary folder removed when the export ends. They hold that one subject, so a record of
// anyone else finds no key: an export cannot open another subject's data even if it tried.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Keyring } from '../keys/keyring.js';
import { KeyStore, type KeyChange, type SubjectEntry } from '../keys/key-store.js';
import { forgottenAtOf } from '../keys/keys-topic-reader.js';
import { PartitionKeys } from '../keys/partition-keys.js';
import type { PartitionEnd } from '../kafka/read-to-end.js';
import { subjectKeyRecords } from '../keys/subject-key-records.js';
import { pseudonymOf } from '../wire/wrapped-key.js';

export interface SubjectKeyState extends SubjectEntry {
  partition: number;
  /** The subject's records in the keys topic (compaction leaves the last one), under its id or a pseudonym of its. */
  records: number;
  /** The pseudonyms of the subject's generations still in the keys topic (SHREDDER_RECORD_KEYS=pseudonym), oldest first: its records' keys. */
  pseudonyms: Uint8Array[];
}

/** The subject's last state in each of `ends`' partitions of the keys topic, read to those end offsets (see subjectKeyRecords). */
export async function subjectKeyStates(kafka: Kafka, keysTopic: string, subject: Uint8Array, ends: readonly PartitionEnd[], keyring: Keyring): Promise<SubjectKeyState[]> {
  const records = await subjectKeyRecords(kafka, keysTopic, subject, ends, keyring, 'kafka-shredder-export');
  return ends.map(({ partition }) => {
    const state: SubjectKeyState = { partition, records: 0, pseudonyms: [] };
    for (const { message, pseudonym } of records.get(partition)!) {
      if (pseudonym && !state.pseudonyms.some((p) => Buffer.from(p).equals(pseudonym))) state.pseudonyms.push(new Uint8Array(pseudonym));
      // (the last record wins, read or not, as every reader of the keys topic takes it: wire-format.md)
      state.wrapped = message.value === null ? undefined : new Uint8Array(message.value);
      state.forgottenAt = forgottenAtOf(message);
      state.records++;
    }
    return state;
  });
}

/** Key stores holding only the subject's states, one per partition; close() removes them. */
export class SubjectKeys {
  private constructor(
    private readonly folder: string,
    private readonly stores: KeyStore[],
    private readonly byPartition: Map<number, PartitionKeys>,
  ) {}

  static async open(subject: Uint8Array, states: readonly SubjectKeyState[], keyring: Keyring): Promise<SubjectKeys> {
    const folder = await mkdtemp(join(tmpdir(), 'kafka-shredder-export-'));
    const stores: KeyStore[] = [];
    const byPartition = new Map<number, PartitionKeys>();
    try {
      for (const state of states) {
        const store = await KeyStore.open(join(folder, String(state.partition)));
        stores.push(store);
        const keys = new PartitionKeys(state.partition, store, keyring, 16);
        // (every pseudonym of the subject's indexed, so its records keyed by them find it; its last state last)
        const live = state.wrapped && pseudonymOf(state.wrapped);
        const changes: KeyChange[] = state.pseudonyms.map((pseudonym) => ({ subject, pseudonym, forgottenAt: state.forgottenAt }));
        if (state.records > 0) changes.push({ subject, wrapped: state.wrapped, forgottenAt: state.forgottenAt, pseudonym: live });
        if (changes.length > 0) await keys.restore(changes, 0);
        byPartition.set(state.partition, keys);
      }
    } catch (err) {
      await new SubjectKeys(folder, stores, byPartition).close();
      throw err;
    }
    return new SubjectKeys(folder, stores, byPartition);
  }

  of(partition: number): PartitionKeys {
    const keys = this.byPartition.get(partition);
    if (!keys) throw new Error(`no keys were read for partition ${partition}`);
    return keys;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.stores.map((s) => s.close()));
    await rm(this.folder, { recursive: true, force: true });
  }
}
