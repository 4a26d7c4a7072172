// The processor's topics: created when missing with the contract's settings, and checked before any
// record is touched (partition counts agree, the keys topic is compacted, plaintext is short-lived).
import { ConfigurationError } from '../errors/shredder-errors.js';
import type { Admin, ITopicConfig, Kafka } from 'kafkajs';
import type { Route, ShredderConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';

/**
 * What is wrong with the topics, every problem at once (as ConfigError lists the variables), each
 * starting with the variables (or library options) that name the topics to fix.
 */
export class TopicLayoutError extends ConfigurationError {
  override readonly name: string = 'TopicLayoutError';
  readonly problems: string[];
  constructor(problems: string | string[]) {
    const list = typeof problems === 'string' ? [problems] : problems;
    // (one problem stays one line: forget and verify-erasure print it after their command's name)
    super(list.length === 1 ? list[0] : `${list.length} topic layout problems:\n${list.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = list;
  }
}

/** Partition count for topics created when none of the co-partitioned topics exists yet. */
export const DEFAULT_PARTITIONS = 3;

export interface TopicLayout {
  /** Partition count shared by every input topic and the keys topic. */
  partitions: number;
  /** The keys topic's delete.retention.ms: how long its tombstones are kept. */
  keysTombstoneRetentionMs: number;
  /** The smallest max.message.bytes of the output topics (Infinity: no output topic). */
  outputMaxMessageBytes: number;
  /** Each output topic's max.message.bytes: a larger record batch is refused. */
  outputsMaxMessageBytes: Map<string, number>;
  /**
   * The smallest max.message.bytes of every topic a transaction writes (outputs, keys topic, dead
   * letters): no produce request's record batch may be larger.
   */
  writtenMaxMessageBytes: number;
  /** The dead letter topic's max.message.bytes: a larger dead letter is written without its value (fitDeadLetters). */
  dlqMaxMessageBytes: number;
}

/** Kafka's default max.message.bytes (broker message.max.bytes). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** The least max.message.bytes of a dead letter topic the processor creates. */
export const DLQ_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
/**
 * What a dead letter topic the processor creates takes beyond its largest input's max.message.bytes:
 * room for the reason headers (a few hundred bytes, two topic names) on a record of the largest size.
 */
export const DLQ_HEADER_ROOM_BYTES = 16 * 1024;
/**
 * What an output topic the processor creates takes beyond its route's input, when that input takes more
 * than Kafka's default: room for the envelope (38 bytes) on a record of the input's largest size.
 */
export const OUTPUT_ROOM_BYTES = 1024;

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

/**
 * How the processor's topics are named to whoever configures them: environment variables for the
 * commands, options for the library's DecryptingConsumer. Layout problems start with these.
 */
export interface TopicSettingNames {
  routes: string;
  keysTopic: string;
  dlqTopic: string;
  sourceKeysTopic: string;
}

export const TOPIC_VARIABLES: TopicSettingNames = {
  routes: 'SHREDDER_ROUTES',
  keysTopic: 'SHREDDER_KEYS_TOPIC',
  dlqTopic: 'SHREDDER_DLQ_TOPIC',
  sourceKeysTopic: 'SHREDDER_SOURCE_KEYS_TOPIC',
};

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
  /** What layout problems name (default TOPIC_VARIABLES). */
  names?: Partial<TopicSettingNames>;
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

/** Existing topics by name: partition count and configuration. */
export type DescribedTopics = Map<string, { partitions: number; config: Map<string, string> }>;

/** A described topic's max.message.bytes (the broker's default when it has no override). */
const maxMessageBytesOf = (described: DescribedTopics, topic: string): number =>
  Number(described.get(topic)?.config.get('max.message.bytes') ?? DEFAULT_MAX_MESSAGE_BYTES);

/**
 * The dead letter topic's problem, if it is smaller than an input: a record of that input that cannot
 * be processed could not be dead-lettered whole. (fitDeadLetters still writes it, without its value:
 * the check is so that this stays the exception of a record bloated by its headers.)
 */
function deadLetterLimitProblem(described: DescribedTopics, config: TopicSettings, roles: TopicRoles, names: TopicSettingNames, inputs = roles.inputs): string | undefined {
  if (!described.has(config.dlqTopic)) return undefined;
  const limit = maxMessageBytesOf(described, config.dlqTopic);
  const larger = inputs.filter((t) => described.has(t) && maxMessageBytesOf(described, t) > limit).map((t) => [t, maxMessageBytesOf(described, t)] as const);
  if (larger.length === 0) return undefined;
  const needed = Math.max(...larger.map(([, n]) => n));
  return (
    `${names.dlqTopic}: the dead letter topic ${config.dlqTopic} takes records of up to ${limit} bytes (max.message.bytes), ` +
    `less than the input topic${larger.length > 1 ? 's' : ''} ${larger.map(([t, n]) => `${t} (${n})`).join(', ')}: ` +
    `a record of ${larger.length > 1 ? 'those' : 'it'} that cannot be processed could not be dead-lettered whole; set max.message.bytes=${needed} or more on ${config.dlqTopic}`
  );
}

/**
 * Every problem of the topics as they are (`described`: the existing ones), each naming the settings
 * that name the topics to fix. Nothing here changes a topic: an existing topic keeps its settings.
 */
export function layoutProblems(described: DescribedTopics, config: TopicSettings, roles: TopicRoles): string[] {
  const names = { ...TOPIC_VARIABLES, ...roles.names };
  const problems: string[] = [];
  if (roles.sourceKeys) {
    const absent = [roles.sourceKeys, ...roles.inputs].filter((t) => !described.has(t));
    if (absent.length > 0) {
      const variables = [...(absent.includes(roles.sourceKeys) ? [names.sourceKeysTopic] : []), ...(absent.some((t) => roles.inputs.includes(t)) ? [names.routes] : [])];
      problems.push(`${variables.join(', ')}: nothing to migrate: ${absent.join(', ')} do${absent.length === 1 ? 'es' : ''} not exist (the old keys topic and the from topics of the routes)`);
    }
  }
  const coPartitioned = [...roles.inputs, config.keysTopic, ...(roles.sourceKeys ? [roles.sourceKeys] : [])];
  const counts = coPartitioned.filter((t) => described.has(t)).map((t) => [t, described.get(t)!.partitions] as const);
  if (new Set(counts.map(([, n]) => n)).size > 1) {
    // a keys topic whose count no input topic has is the one to look at first
    const inputCounts = new Set(counts.filter(([t]) => roles.inputs.includes(t)).map(([, n]) => n));
    const odd = (topic: string | undefined) => topic !== undefined && described.has(topic) && !inputCounts.has(described.get(topic)!.partitions);
    const variables = [names.routes, ...(odd(config.keysTopic) ? [names.keysTopic] : []), ...(odd(roles.sourceKeys) ? [names.sourceKeysTopic] : [])];
    problems.push(
      `${variables.join(', ')}: partition counts differ: ${counts.map(([t, n]) => `${t} has ${n}`).join(', ')}; every input topic and the keys topic ${config.keysTopic} need the same count`,
    );
  }
  const keys = described.get(config.keysTopic);
  if (keys && !(keys.config.get('cleanup.policy') ?? '').split(',').includes('compact')) {
    problems.push(`${names.keysTopic}: the keys topic ${config.keysTopic} is not compacted (cleanup.policy=${keys.config.get('cleanup.policy')}); forgotten keys would never be erased: set cleanup.policy=compact on it`);
  }
  const partitions = counts.length > 0 ? Math.max(...counts.map(([, n]) => n)) : DEFAULT_PARTITIONS;
  const tooFew = roles.outputs.filter((t) => described.has(t) && described.get(t)!.partitions < partitions);
  if (tooFew.length > 0) {
    problems.push(`${names.routes}: output topics need at least ${partitions} partitions (records keep their partition): ${tooFew.map((t) => `${t} has ${described.get(t)!.partitions}`).join(', ')}`);
  }
  const deadLetters = deadLetterLimitProblem(described, config, roles, names);
  if (deadLetters) problems.push(deadLetters);
  return problems;
}

/**
 * Checks the layout and creates the missing topics: nothing is created when the existing topics have
 * a problem (every problem is reported at once, in one TopicLayoutError).
 */
export async function ensureTopics(
  admin: Admin,
  config: TopicSettings,
  roles: TopicRoles,
  logger: Logger,
): Promise<TopicLayout> {
  const names = { ...TOPIC_VARIABLES, ...roles.names };
  const all = [...new Set([...roles.inputs, ...roles.outputs, config.keysTopic, config.dlqTopic, ...(roles.audit ? [roles.audit] : [])])];
  const before = await describe(admin, roles.sourceKeys ? [...all, roles.sourceKeys] : all);
  const problems = layoutProblems(before, config, roles);
  if (problems.length > 0) throw new TopicLayoutError(problems);
  const coPartitioned = [...roles.inputs, config.keysTopic, ...(roles.sourceKeys ? [roles.sourceKeys] : [])];
  const counts = coPartitioned.filter((t) => before.has(t)).map((t) => before.get(t)!.partitions);
  const partitions = counts.length > 0 ? Math.max(...counts) : DEFAULT_PARTITIONS;

  // The dead letter topic takes what the inputs take: a record of an input that cannot be processed
  // is written there as it is, with its reason headers.
  const dlqMaxMessageBytesFor = (described: DescribedTopics) =>
    Math.max(DLQ_MAX_MESSAGE_BYTES, ...roles.inputs.filter((t) => described.has(t)).map((t) => maxMessageBytesOf(described, t) + DLQ_HEADER_ROOM_BYTES));
  // An output takes what its routes' inputs take, so that a record of the input's largest size is
  // encrypted (38 bytes more) or decrypted (fewer) rather than dead-lettered or, for the decryptor,
  // refused by the broker; left to the broker's default when they take no more than Kafka's default.
  const outputLimit = (topic: string, described: DescribedTopics): Record<string, string> => {
    const inputs = roles.inputs.filter((input, i) => roles.outputs[i] === topic && described.has(input));
    const largest = Math.max(0, ...inputs.map((input) => maxMessageBytesOf(described, input)));
    return largest > DEFAULT_MAX_MESSAGE_BYTES ? { 'max.message.bytes': String(largest + OUTPUT_ROOM_BYTES) } : {};
  };
  const settingsOf = (topic: string, described: DescribedTopics): Record<string, string> => {
    if (topic === config.keysTopic) return keysTopicConfig(config.erasureDeadlineMs);
    if (roles.outputs.includes(topic)) return { ...(roles.encrypted.includes(topic) ? { 'retention.ms': '-1' } : { 'retention.ms': String(config.plaintextRetentionMs) }), ...outputLimit(topic, described) };
    if (roles.encrypted.includes(topic)) return { 'retention.ms': '-1' };
    if (topic === roles.audit) return { 'retention.ms': '-1', 'cleanup.policy': 'delete' }; // evidence: never compacted away
    if (topic === config.dlqTopic) {
      // plaintext (records that could not be processed)
      return { 'retention.ms': String(config.plaintextRetentionMs), 'max.message.bytes': String(dlqMaxMessageBytesFor(described)) };
    }
    return { 'retention.ms': String(config.plaintextRetentionMs) }; // plaintext topics
  };
  const spec = (topic: string, described: DescribedTopics): ITopicConfig => ({
    topic,
    numPartitions: topic === config.dlqTopic || topic === roles.audit ? 1 : partitions,
    configEntries: Object.entries(settingsOf(topic, described)).map(([name, value]) => ({ name, value })),
  });
  const missing = all.filter((t) => !before.has(t));
  const inputsCreated = roles.inputs.filter((t) => missing.includes(t));
  // An input created now gets the broker's default max.message.bytes, known once it exists: the
  // outputs and the dead letter topic, which take what the inputs take, are then created after it.
  const later = inputsCreated.length > 0 ? missing.filter((t) => t === config.dlqTopic || (roles.outputs.includes(t) && !roles.inputs.includes(t))) : [];
  const first = missing.filter((t) => !later.includes(t));
  let after = before;
  if (first.length > 0) {
    await createTopicsAndWait(admin, first.map((t) => spec(t, before)));
    after = await describe(admin, all);
  }
  if (later.length > 0) {
    await createTopicsAndWait(admin, later.map((t) => spec(t, after)));
    after = await describe(admin, all);
  }
  if (missing.length > 0) logger.info({ topics: missing, partitions }, 'created topics');
  if (inputsCreated.length > 0) {
    // (an existing dead letter topic, against the inputs just created with the broker's default)
    const problem = deadLetterLimitProblem(after, config, roles, names, inputsCreated);
    if (problem) throw new TopicLayoutError([problem]);
  }

  const keys = before.get(config.keysTopic);
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
  const keysTombstoneRetentionMs = Number(after.get(config.keysTopic)?.config.get('delete.retention.ms') ?? 86_400_000);
  const maxMessageBytes = (topic: string) => maxMessageBytesOf(after, topic);
  // (no output topic, as for the library's DecryptingConsumer: no limit of its own)
  const outputsMaxMessageBytes = new Map(roles.outputs.map((t) => [t, maxMessageBytes(t)]));
  const outputMaxMessageBytes = Math.min(...outputsMaxMessageBytes.values());
  const dlqMaxMessageBytes = maxMessageBytes(config.dlqTopic);
  const writtenMaxMessageBytes = Math.min(outputMaxMessageBytes, maxMessageBytes(config.keysTopic), dlqMaxMessageBytes);
  return { partitions, keysTombstoneRetentionMs, outputMaxMessageBytes, outputsMaxMessageBytes, writtenMaxMessageBytes, dlqMaxMessageBytes };
}
