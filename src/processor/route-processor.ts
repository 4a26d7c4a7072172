// What the encryptor and the decryptor share as processes: routes (from -> to), the StreamProcessor
// they run, what they expose to the CLI, HTTP and tests, and how they log a dead-lettered record
// (the subject by its keyed hash only, never the record).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka, Message } from 'kafkajs';
import type { ShredderConfig } from '../config/config.js';
import { createKafka } from '../kafka/client.js';
import { subjectRefFor, type Logger, type SubjectRef } from '../observability/logger.js';
import { fitDeadLetters, logDeadLetters } from '../kafka/dead-letter.js';
import { DLQ_MAX_MESSAGE_BYTES, prepareTopics, type TopicLayout, type TopicRoles } from '../kafka/topics.js';
import { requestBytesFor } from '../kafka/transactions.js';
import { openKeyring, type OpenKeyring } from '../keys/key-providers.js';
import { fieldMode, type FieldMode } from '../fields/field-mode.js';
import { ProcessorMetrics } from '../observability/metrics.js';
import { NOT_READY, STARTING_HEALTH, type Health, type Readiness } from '../observability/health.js';
import type { StreamProcessor, StreamProcessorOptions } from './stream-processor.js';
import { messageOf, outcomeOf } from '../errors/shredder-errors.js';
import { ConfigError } from '../config/config.js';
import { SchemaRegistryClient } from '../schema-registry/client.js';

/** Start waits for the master-key provider with back-off from the first to the last delay. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;


export abstract class RouteProcessor {
  protected processor?: StreamProcessor;
  /** `from` topic -> `to` topic. */
  protected readonly routes: Map<string, string>;
  /** The logs' subject references: derived through the master key at start (prepareKeys). */
  protected subjectRef: SubjectRef = () => 'unavailable';
  /** Why start() is still waiting (the master-key provider is down), once that has lasted the fault bound. */
  private startProblem?: string;
  /** Aborted when a stop begins: a start still waiting for the provider gives up. */
  protected readonly stopRequested = new AbortController();
  readonly metrics: ProcessorMetrics;
  /** The schema registry field mode reads values' schemas from (SHREDDER_SCHEMA_REGISTRY_URL). */
  private readonly schemaRegistry?: SchemaRegistryClient;
  /** Field-level encryption settings; undefined: whole values. */
  protected readonly fields: FieldMode | undefined;
  /** The master keys (SHREDDER_KEY_PROVIDER), open from construction to closeKeyring(). */
  protected readonly keys: OpenKeyring;
  /** The dead letter topic's max.message.bytes, once prepareTopics() has read it. */
  private dlqMaxMessageBytes = DLQ_MAX_MESSAGE_BYTES;

  constructor(
    protected readonly config: ShredderConfig,
    protected readonly logger: Logger,
    protected readonly kafka: Kafka = createKafka(config.kafka, logger),
  ) {
    this.routes = new Map(config.routes.map((r) => [r.from, r.to]));
    this.keys = openKeyring(config.keys, (message) => logger.warn({ provider: config.keys.provider }, message));
    this.metrics = new ProcessorMetrics(config.command);
    this.schemaRegistry = config.schemaRegistry && new SchemaRegistryClient(config.schemaRegistry);
    const registry = this.schemaRegistry && { client: this.schemaRegistry, tags: config.fieldTags };
    this.fields = fieldMode(config.fields, config.subjectField, config.shreddedFieldValue, registry);
  }

  /**
   * Field mode with a schema registry: refuses to start (a ConfigurationError, exit 2) when the latest
   * schema of an input topic cannot carry a selected field encrypted, or a configured path names no
   * field. A registry that cannot be reached now does not hold the start: each schema is also checked
   * when its first record arrives.
   */
  protected async checkSchemas(topics: readonly string[]): Promise<void> {
    const format = this.fields?.registryFormat;
    if (!format) return;
    let checked;
    try {
      checked = await format.checkTopics(topics);
    } catch (err) {
      if (outcomeOf(err) !== 'retry') throw err;
      this.logger.warn({ error: messageOf(err) }, 'the input topics\' schemas could not be checked at start: each is checked when its first record arrives');
      return;
    }
    if (checked.problems.length > 0) throw new ConfigError(checked.problems);
    if (checked.unchecked.length > 0) {
      this.logger.info({ topics: checked.unchecked }, 'no value schema registered yet: each schema is checked when its first record arrives');
    }
  }

  /** The route label of an input topic. */
  protected route(from: string): string {
    return `${from}->${this.routes.get(from)}`;
  }

  health(): Health {
    if (this.startProblem !== undefined && !this.processor) return { live: false, consumer: 'starting', problem: this.startProblem };
    return this.processor?.health() ?? STARTING_HEALTH;
  }

  /**
   * Derives what the processor needs from the current master key before it processes a record (the
   * logs' subject references), waiting for a provider that is down (an HSM): the process starts,
   * serves its probes, and goes on by itself once the provider answers.
   */
  protected async prepareKeys(): Promise<void> {
    const { keyring } = this.keys;
    this.subjectRef = await this.whenKeysAvailable('deriving the log key', () => subjectRefFor(keyring));
  }

  /**
   * `work`, retried with back-off for as long as it fails on a transient fault (the master-key
   * provider is down) and no stop has begun: one warning line, and /healthz 503 once it has lasted
   * SHREDDER_TASK_OPEN_TIMEOUT_MS. Other errors are thrown at once.
   */
  protected async whenKeysAvailable<T>(what: string, work: () => T): Promise<T> {
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const result = work();
        if (attempt > 1) this.logger.info({ attempts: attempt, waitedMs: Date.now() - since }, `${what}: the master key is available again`);
        this.startProblem = undefined;
        return result;
      } catch (err) {
        if (outcomeOf(err) !== 'retry' || this.stopRequested.signal.aborted) throw err;
        if (attempt === 1) this.logger.warn({ error: messageOf(err) }, `${what} failed; retrying until the master key is available`);
        if (Date.now() - since >= this.config.taskOpenTimeoutMs) this.startProblem = `${what} failed for ${Math.round((Date.now() - since) / 1000)} s: ${messageOf(err)}`;
        // (a stop cuts the wait short: the next failure then ends the start)
        await sleep(Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 1)), undefined, { signal: this.stopRequested.signal }).catch(() => undefined);
      }
    }
  }

  readiness(): Readiness {
    return this.processor?.readiness() ?? NOT_READY;
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;

  /** Rejects when the consumer crashed for good. */
  get failed(): Promise<never> | undefined {
    return this.processor?.failed;
  }

  get batchTimings() {
    return this.processor?.batchTimings ?? [];
  }

  get restores() {
    return this.processor?.restores ?? [];
  }

  get assignedPartitions(): number[] {
    return this.processor?.assignedPartitions ?? [];
  }

  /** Creates and checks the topics (src/kafka/topics.ts), and keeps what the dead letters need. */
  protected async prepareTopics(roles: TopicRoles): Promise<TopicLayout> {
    const layout = await prepareTopics(this.kafka, this.config, roles, this.logger);
    this.dlqMaxMessageBytes = layout.dlqMaxMessageBytes;
    return layout;
  }

  /** A batch's dead letters as the dead letter topic can take them (see fitDeadLetters). */
  protected fitDeadLetters(deadLetters: Message[]): { deadLetters: Message[]; valuesDropped: number } {
    return fitDeadLetters(deadLetters, this.dlqMaxMessageBytes);
  }

  /** The StreamProcessor options every route processor sets the same way. */
  protected commonOptions(layout: TopicLayout): Omit<StreamProcessorOptions, 'name' | 'handler'> {
    const { config } = this;
    return {
      kafka: this.kafka,
      inputs: config.routes.map((r) => r.from),
      keysTopic: config.keysTopic,
      groupId: config.groupId,
      stateDir: config.stateDir,
      masterKey: this.keys.keyring,
      keyCacheSubjects: config.keyCacheSubjects,
      pseudonymousKeys: config.recordKeys === 'pseudonym',
      checkpointMaxAgeMs: layout.keysTombstoneRetentionMs,
      maxRequestBytes: requestBytesFor(layout.writtenMaxMessageBytes),
      logger: this.logger,
      metrics: this.metrics,
      subjectRef: this.subjectRef,
      taskOpenTimeoutMs: config.taskOpenTimeoutMs,
    };
  }

  /** Releases the master keys' provider (an HSM session) and the schema registry's connections: the last step of a stop. */
  protected async closeKeyring(): Promise<void> {
    this.schemaRegistry?.close();
    await this.keys.close().catch((err: Error) => this.logger.warn({ error: err.message }, 'closing the master keys failed'));
  }

  protected logDeadLetters(deadLetters: readonly Message[]): void {
    logDeadLetters(this.logger, this.subjectRef, deadLetters);
  }
}
