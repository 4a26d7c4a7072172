// What the encryptor and the decryptor share as processes: routes (from -> to), the StreamProcessor
// they run, what they expose to the CLI, HTTP and tests, and how they log a dead-lettered record
// (the subject by its keyed hash only, never the record).
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

export abstract class RouteProcessor {
  protected processor?: StreamProcessor;
  /** `from` topic -> `to` topic. */
  protected readonly routes: Map<string, string>;
  protected readonly subjectRef: SubjectRef;
  readonly metrics: ProcessorMetrics;
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
    this.subjectRef = subjectRefFor(this.keys.keyring);
    this.metrics = new ProcessorMetrics(config.command);
    this.fields = fieldMode(config.fields, config.subjectField, config.shreddedFieldValue);
  }

  /** The route label of an input topic. */
  protected route(from: string): string {
    return `${from}->${this.routes.get(from)}`;
  }

  health(): Health {
    return this.processor?.health() ?? STARTING_HEALTH;
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
      checkpointMaxAgeMs: layout.keysTombstoneRetentionMs,
      maxRequestBytes: requestBytesFor(layout.writtenMaxMessageBytes),
      logger: this.logger,
      metrics: this.metrics,
      taskOpenTimeoutMs: config.taskOpenTimeoutMs,
    };
  }

  /** Releases the master keys' provider (an HSM session): the last step of a stop. */
  protected async closeKeyring(): Promise<void> {
    await this.keys.close().catch((err: Error) => this.logger.warn({ error: err.message }, 'closing the master keys failed'));
  }

  protected logDeadLetters(deadLetters: readonly Message[]): void {
    logDeadLetters(this.logger, this.subjectRef, deadLetters);
  }
}
