// `kafka-shredder keys status`: how many live keys each master key id wraps, per keys-topic partition,
// read from the keys topic itself (the source of truth, whoever owns its partitions), and how many
// superseded values (re-wrapped or forgotten keys, not yet compacted away) each id still has in the
// log. A master key can leave the keyring once it wraps no live key and no superseded value of it is
// left: compaction has erased them.
import type { Kafka } from 'kafkajs';
import { readToEnd } from '../kafka/read-to-end.js';
import { wrappedMasterKeyId } from '../wire/wrapped-key.js';

export interface PartitionKeyStatus {
  partition: number;
  /** The log start and end offsets read. */
  low: number;
  high: number;
  /** Live keys (a subject's last value is a key) by the master key id that wraps them. */
  live: Record<string, number>;
  /** Subjects whose last value is a tombstone (forgotten, until compaction removes the tombstone). */
  forgotten: number;
  /** Values that a later value of their subject supersedes, still in the log, by master key id. */
  superseded: Record<string, number>;
  /** Values that are not keys-topic values of this product (left alone by every reader). */
  unreadable: number;
}

export interface KeysStatus {
  topic: string;
  partitions: PartitionKeyStatus[];
  total: Omit<PartitionKeyStatus, 'partition' | 'low' | 'high'>;
}

const masterKeyIdOf = (value: Buffer): string | undefined => {
  const id = wrappedMasterKeyId(value);
  return id === undefined ? undefined : String(id);
};

const add = (counts: Record<string, number>, id: string, n = 1) => void (counts[id] = (counts[id] ?? 0) + n);

export async function keysStatus(kafka: Kafka, topic: string): Promise<KeysStatus> {
  /** Per partition: each subject's values in order (their master key ids; null: a tombstone). */
  const values = new Map<number, Map<string, (string | null | 'unreadable')[]>>();
  const ends = await readToEnd(
    kafka,
    topic,
    (partition, message) => {
      if (!message.key || message.key.length === 0) return; // the segment-roll marker
      let subjects = values.get(partition);
      if (!subjects) values.set(partition, (subjects = new Map()));
      const subject = message.key.toString('latin1');
      let history = subjects.get(subject);
      if (!history) subjects.set(subject, (history = []));
      history.push(message.value === null ? null : (masterKeyIdOf(message.value) ?? 'unreadable'));
    },
    { groupPrefix: 'kafka-shredder-keys-status' },
  );
  const total: KeysStatus['total'] = { live: {}, forgotten: 0, superseded: {}, unreadable: 0 };
  const partitions = ends.map(({ partition, low, high }): PartitionKeyStatus => {
    const status: PartitionKeyStatus = { partition, low, high, live: {}, forgotten: 0, superseded: {}, unreadable: 0 };
    for (const history of values.get(partition)?.values() ?? []) {
      const last = history[history.length - 1];
      if (last === null) status.forgotten++;
      else if (last === 'unreadable') status.unreadable++;
      else add(status.live, last);
      for (const earlier of history.slice(0, -1)) if (earlier !== null && earlier !== 'unreadable') add(status.superseded, earlier);
    }
    for (const [id, n] of Object.entries(status.live)) add(total.live, id, n);
    for (const [id, n] of Object.entries(status.superseded)) add(total.superseded, id, n);
    total.forgotten += status.forgotten;
    total.unreadable += status.unreadable;
    return status;
  });
  return { topic, partitions, total };
}

/** The human summary: a table per partition, and what it means for the keyring. */
export function formatKeysStatus(status: KeysStatus, currentId: number): string {
  const ids = [...new Set([currentId, ...status.partitions.flatMap((p) => [...Object.keys(p.live), ...Object.keys(p.superseded)].map(Number))])].sort((a, b) => a - b);
  const header = ['partition', ...ids.map((id) => `master key ${id}${id === currentId ? ' (current)' : ''}`), 'forgotten', 'superseded in the log'];
  const row = (name: string, s: Omit<PartitionKeyStatus, 'partition' | 'low' | 'high'>) => [
    name,
    ...ids.map((id) => String(s.live[id] ?? 0)),
    String(s.forgotten),
    ids.filter((id) => s.superseded[id]).map((id) => `${id}: ${s.superseded[id]}`).join(', ') || '0',
  ];
  const rows = [header, ...status.partitions.map((p) => row(String(p.partition), p)), row('all', status.total)];
  const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = [`keys topic ${status.topic}: ${status.partitions.length} partitions; live keys by the master key id that wraps them`];
  for (const r of rows) lines.push(r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd());
  for (const id of ids.filter((i) => i !== currentId)) {
    const live = status.total.live[id] ?? 0;
    const superseded = status.total.superseded[id] ?? 0;
    if (live > 0) lines.push(`master key ${id} still wraps ${live} live keys: keep it in the keyring (the encryptors re-wrap them under ${currentId})`);
    else if (superseded > 0) lines.push(`master key ${id} wraps no live key, but ${superseded} superseded values under it are still in the log: remove it once compaction has erased them (within SHREDDER_ERASURE_DEADLINE_MS)`);
    else lines.push(`master key ${id} wraps nothing in this topic any more: it can be removed from the keyring`);
  }
  if (status.total.unreadable > 0) lines.push(`${status.total.unreadable} subjects' last values are not keys-topic values of this product`);
  return `${lines.join('\n')}\n`;
}
