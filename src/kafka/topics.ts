// The processor's topics: created when missing with the contract's settings, and checked before any
// record is touched (partition counts agree, the keys topic is compacted, plaintext is short-lived).
import { ConfigurationError } from '../errors/shredder-errors.js';
import type { Admin, ITopicConfig, Kafka } from 'kafkajs';
import type { Route, ShredderConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';

export class TopicLayoutError extends ConfigurationError {
  override readonly name: string = 'TopicLayoutError';
}

/** Partition count for topics created when none of the co-partitioned topics exists yet. */
export const DEFAULT_PARTITIONS = 3;

export interface TopicLayout {
  /** Partition count shared by every input topic and the keys topic. */
  partitions: number;
  /** The keys topic's delete.retention.ms: how long its tombstones are kept. */
  keysTombstoneRetentionMs: number;
  /** The smallest max.message.bytes of the output topics: a larger record batch is refused. */
  outputMaxMessageBytes: number;
  /**
   * The smallest max.message.bytes of every topic a transaction writes (outputs, keys topic, dead
   * letters): no produce request's record batch may be larger.
   */
  writtenMaxMessageBytes: number;
}

/** Kafka's default max.message.bytes (broker message.max.bytes). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
export const DLQ_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates topics and waits until every partition has a leader. kafkajs waits for leaders by retrying
 * LEADER_NOT_AVAILABLE only, but a KRaft broker can answer the metadata request that follows
 * CreateTopics with UNKNOWN_TOPIC_OR_PARTITION until its metadata catches up (seen when several
 * processors start at once), and it does not wait at all when another client created one of the
 * topics first: both are waited out here, up to `timeoutMs`.
 */
export async function createTopicsAndWait(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<void> {
  try {
    // false: another client created some of them meanwhile, and kafkajs did not wait for any leader
    if (await admin.createTopics({ topics, waitForLeaders: true })) return;
  } catch (err) {
    if ((err as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
  }
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: names });
      if (found.length === names.length && found.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (err) {
      if ((err as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
    }
    if (Date.now() > deadline) throw new Error(`topics ${names.join(', ')} have no leader after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** The keys topic's settings: compaction bounded in time, so a tombstone erases within the deadline. */
export function keysTopicConfig(erasureDeadlineMs: number): Record<string, string> {
  // A tombstone's predecessor is gone once its segment has rolled (segment.ms) and the cleaner has
  // run (max.compaction.lag.ms); half the deadline each keeps the sum within it.
  const half = String(Math.floor(erasureDeadlineMs / 2));
  return {
    'cleanup.policy': 'compact',
    'segment.ms': half,
    'max.compaction.lag.ms': half,
    'min.compaction.lag.ms': '0',
    'min.cleanable.dirty.ratio': '0.1',
  };
}

async function describe(admin: Admin, topics: string[]): Promise<Map<string, { partitions: number; config: Map<string, string> }>> {
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((t) => existing.has(t));
  const result = new Map<string, { partitions: number; config: Map<string, string> }>();
  if (present.length === 0) return result;
  const metadata = await admin.fetchTopicMetadata({ topics: present });
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: present.map((name) => ({ type: 2 /* TOPIC */, name })),
  });
  for (const topic of metadata.topics) {
    const resource = configs.resources.find((r) => r.resourceName === topic.name);
    result.set(topic.name, {
      partitions: topic.partitions.length,
      config: new Map((resource?.configEntries ?? []).map((e) => [e.configName, e.configValue])),
    });
  }
  return result;
}

/** The settings topics are created and checked with. */
export type TopicSettings = Pick<ShredderConfig, 'keysTopic' | 'dlqTopic' | 'erasureDeadlineMs' | 'plaintextRetentionMs'>;

export interface TopicRoles {
  inputs: string[];
  outputs: string[];
  plaintext: string[];
  encrypted: string[];
  /** The erasure audit trail the encryptor and reencrypt write (one partition, kept forever). */
  audit?: string;
  /**
   * reencrypt: the old keys topic, read only. It and the inputs (the old encrypted topics) must exist
   * (nothing to migrate otherwise) and are co-partitioned with the new keys topic.
   */
  sourceKeys?: string;
}

/** The encryptor reads plaintext from each route's `from` and writes encrypted records to its `to` (and erasures to the audit trail). */
export function encryptorTopicRoles(routes: readonly Route[], audit?: string): TopicRoles {
  const from = routes.map((r) => r.from);
  const to = routes.map((r) => r.to);
  return { inputs: from, outputs: to, plaintext: from, encrypted: to, audit };
}

/** The decryptor reads encrypted records from each route's `from` and writes plaintext to its `to`. */
export function decryptorTopicRoles(routes: readonly Route[]): TopicRoles {
  const from = routes.map((r) => r.from);
  const to = routes.map((r) => r.to);
  return { inputs: from, outputs: to, plaintext: to, encrypted: from };
}

/** ensureTopics() through a short-lived admin client. */
export async function prepareTopics(kafka: Kafka, config: TopicSettings, roles: TopicRoles, logger: Logger): Promise<TopicLayout> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await ensureTopics(admin, config, roles, logger);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates the missing topics and checks the layout. `plaintextIn`/`plaintextOut` and `encrypted` name the
 * route topics by role (the encryptor reads plaintext and writes encrypted; the decryptor the reverse).
 */
export async function ensureTopics(
  admin: Admin,
  config: TopicSettings,
  roles: TopicRoles,
  logger: Logger,
): Promise<TopicLayout> {
  const all = [...new Set([...roles.inputs, ...roles.outputs, config.keysTopic, config.dlqTopic, ...(roles.audit ? [roles.audit] : [])])];
  const before = await describe(admin, roles.sourceKeys ? [...all, roles.sourceKeys] : all);
  if (roles.sourceKeys) {
    const absent = [roles.sourceKeys, ...roles.inputs].filter((t) => !before.has(t));
    if (absent.length > 0) throw new TopicLayoutError(`nothing to migrate: ${absent.join(', ')} do${absent.length === 1 ? 'es' : ''} not exist (SHREDDER_SOURCE_KEYS_TOPIC and the from topics of SHREDDER_ROUTES)`);
  }
  const coPartitioned = [...roles.inputs, config.keysTopic, ...(roles.sourceKeys ? [roles.sourceKeys] : [])];
  const counts = coPartitioned.filter((t) => before.has(t)).map((t) => [t, before.get(t)!.partitions] as const);
  const partitions = counts.length > 0 ? Math.max(...counts.map(([, n]) => n)) : DEFAULT_PARTITIONS;
  const mismatched = counts.filter(([, n]) => n !== partitions);
  if (mismatched.length > 0) {
    throw new TopicLayoutError(
      `partition counts differ: ${counts.map(([t, n]) => `${t} has ${n}`).join(', ')}; every input topic and the keys topic ${config.keysTopic} need the same count`,
    );
  }

  const settingsOf = (topic: string): Record<string, string> => {
    if (topic === config.keysTopic) return keysTopicConfig(config.erasureDeadlineMs);
    if (roles.encrypted.includes(topic)) return { 'retention.ms': '-1' };
    if (topic === roles.audit) return { 'retention.ms': '-1', 'cleanup.policy': 'delete' }; // evidence: never compacted away
    if (topic === config.dlqTopic) {
      // plaintext (records that could not be processed), and room for one that was too large for its
      // output plus the reason headers
      return { 'retention.ms': String(config.plaintextRetentionMs), 'max.message.bytes': String(DLQ_MAX_MESSAGE_BYTES) };
    }
    return { 'retention.ms': String(config.plaintextRetentionMs) }; // plaintext topics
  };
  const missing: ITopicConfig[] = all
    .filter((t) => !before.has(t))
    .map((topic) => ({
      topic,
      numPartitions: topic === config.dlqTopic || topic === roles.audit ? 1 : partitions,
      configEntries: Object.entries(settingsOf(topic)).map(([name, value]) => ({ name, value })),
    }));
  if (missing.length > 0) {
    await createTopicsAndWait(admin, missing);
    logger.info({ topics: missing.map((t) => t.topic), partitions }, 'created topics');
  }

  const keys = before.get(config.keysTopic);
  if (keys && !(keys.config.get('cleanup.policy') ?? '').split(',').includes('compact')) {
    throw new TopicLayoutError(`the keys topic ${config.keysTopic} is not compacted (cleanup.policy=${keys.config.get('cleanup.policy')}); forgotten keys would never be erased`);
  }
  if (keys) {
    // an existing keys topic keeps its own settings: say when they cannot honour the deadline
    const lag = Number(keys.config.get('max.compaction.lag.ms') ?? Number.MAX_SAFE_INTEGER);
    const segment = Number(keys.config.get('segment.ms') ?? 604_800_000);
    if (lag + segment > config.erasureDeadlineMs) {
      logger.warn(
        { topic: config.keysTopic, maxCompactionLagMs: lag, segmentMs: segment, deadlineMs: config.erasureDeadlineMs, expected: keysTopicConfig(config.erasureDeadlineMs) },
        'the keys topic cannot erase a forgotten key within SHREDDER_ERASURE_DEADLINE_MS: set its max.compaction.lag.ms and segment.ms',
      );
    }
  }
  const tooFew = roles.outputs.filter((t) => before.has(t) && before.get(t)!.partitions < partitions);
  if (tooFew.length > 0) {
    throw new TopicLayoutError(`output topics need at least ${partitions} partitions (records keep their partition): ${tooFew.map((t) => `${t} has ${before.get(t)!.partitions}`).join(', ')}`);
  }
  // The dead letter topic counts as plaintext whoever writes it: the encryptor's dead letters are its
  // plaintext input records, and by default both processors share it.
  for (const topic of [...roles.plaintext, config.dlqTopic].filter((t) => before.has(t))) {
    const retention = Number(before.get(topic)!.config.get('retention.ms') ?? NaN);
    if (retention < 0 || retention > config.plaintextRetentionMs) {
      const message =
        topic === config.dlqTopic
          ? 'the dead letter topic keeps records longer than SHREDDER_PLAINTEXT_RETENTION_MS: dead letters are plaintext, and a forgotten subject\'s stay readable until they expire; set its retention.ms'
          : 'plaintext topic keeps records longer than SHREDDER_PLAINTEXT_RETENTION_MS';
      logger.warn({ topic, retentionMs: retention, limitMs: config.plaintextRetentionMs }, message);
    }
  }
  const after = missing.length > 0 ? await describe(admin, all) : before;
  const keysTombstoneRetentionMs = Number(after.get(config.keysTopic)?.config.get('delete.retention.ms') ?? 86_400_000);
  const maxMessageBytes = (topic: string) => Number(after.get(topic)?.config.get('max.message.bytes') ?? DEFAULT_MAX_MESSAGE_BYTES);
  const outputMaxMessageBytes = Math.min(DLQ_MAX_MESSAGE_BYTES, ...roles.outputs.map(maxMessageBytes));
  const writtenMaxMessageBytes = Math.min(outputMaxMessageBytes, maxMessageBytes(config.keysTopic), maxMessageBytes(config.dlqTopic));
  return { partitions, keysTombstoneRetentionMs, outputMaxMessageBytes, writtenMaxMessageBytes };
}
