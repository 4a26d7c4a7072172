// The keys an export needs: one subject's last keys-topic state in each partition it reads, read from
// the keys topic (the source of truth, not any processor's state dir) into key stores of the export's
// own, in a temporary folder removed when the export ends. They hold that one subject, so a record of
// anyone else finds no key: an export cannot open another subject's data even if it tried.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Keyring } from '../keys/keyring.js';
import { KeyStore, type SubjectEntry } from '../keys/key-store.js';
import { forgottenAtOf } from '../keys/keys-topic-reader.js';
import { PartitionKeys } from '../keys/partition-keys.js';
import { readUpTo, type PartitionEnd } from '../kafka/read-to-end.js';

export interface SubjectKeyState extends SubjectEntry {
  partition: number;
  /** The subject's records in the keys topic (compaction leaves the last one). */
  records: number;
}

/** The subject's last state in each of `ends`' partitions of the keys topic, read to those end offsets. */
export async function subjectKeyStates(kafka: Kafka, keysTopic: string, subject: Uint8Array, ends: readonly PartitionEnd[]): Promise<SubjectKeyState[]> {
  const states = new Map<number, SubjectKeyState>(ends.map((e) => [e.partition, { partition: e.partition, records: 0 }]));
  const wanted = Buffer.from(subject.buffer, subject.byteOffset, subject.byteLength);
  await readUpTo(kafka, keysTopic, ends, (partition, messages) => {
    const state = states.get(partition)!;
    for (const message of messages) {
      if (!message.key || !wanted.equals(message.key)) continue;
      // (the last record wins, read or not, as every reader of the keys topic takes it: wire-format.md)
      state.wrapped = message.value === null ? undefined : new Uint8Array(message.value);
      state.forgottenAt = forgottenAtOf(message);
      state.records++;
    }
  }, { groupPrefix: 'kafka-shredder-export' });
  return [...states.values()];
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
        if (state.records > 0) await keys.restore([{ subject, wrapped: state.wrapped, forgottenAt: state.forgottenAt }], 0);
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
