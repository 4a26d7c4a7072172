// The in-process decrypting consumer (library API, see docs/library.md): a kafkajs-style consumer of
// encrypted topics that hands the application each record's plaintext and status, and never writes
// plaintext back to Kafka. Same tasks, key stores and key-race rule as `kafka-shredder decrypt`;
// delivery is at-least-once (offsets are committed after the application's handler returns).
import type { IHeaders, Kafka } from 'kafkajs';
import type { KafkaConnection } from '../config/config.js';
import { loadAeadRegistry } from '../crypto/index.js';
import { createKafka, type TlsOptions } from '../kafka/client.js';
import { explainConnectionError, inLibraryTerms, KafkaConnectionError } from '../kafka/connection-errors.js';
import { fitDeadLetters, logDeadLetters } from '../kafka/dead-letter.js';
import { prepareTopics } from '../kafka/topics.js';
import { Keyring } from '../keys/keyring.js';
import { LocalMasterKey } from '../keys/local-master-key.js';
import { createLogger, subjectRefFor, type Logger } from '../observability/logger.js';
import { fieldMode, type FieldMode } from '../fields/field-mode.js';
import { SchemaRegistryClient, type SchemaRegistryConnection } from '../schema-registry/client.js';
import { ProcessorMetrics } from '../observability/metrics.js';
import { NOT_READY, STARTING_HEALTH, type Health, type Readiness } from '../observability/health.js';
import { StreamProcessor } from '../processor/stream-processor.js';
import { enforceErrorsTolerance } from '../processor/errors-tolerance.js';
import { decryptBatch, type RecordStatus } from './decrypt-batch.js';

export type { RecordStatus };

export interface DecryptingConsumerOptions {
  brokers: string[];
  /** Consumer group; also names the local key stores. */
  groupId: string;
  /** Encrypted topics to read (co-partitioned with the keys topic). */
  topics: string[];
  /**
   * The 32-byte master key that wrapped the data keys (its id: masterKeyId, default 1). Or, instead,
   * `masterKeys` (a keyring by id: keys wrapped under any of them open) or your own `keyring` (e.g.
   * of a PKCS#11 token's keys: openPkcs11MasterKeys). Exactly one of the three.
   */
  masterKey?: Uint8Array;
  /** Default 1; with `masterKeys`, the one whose derived key makes the logs' subject references. */
  masterKeyId?: number;
  masterKeys?: Record<number, Uint8Array>;
  keyring?: Keyring;
  /** Default `encryption-keys`. */
  keysTopic?: string;
  /** Where records that cannot be opened go, with their reason. Default `shredder-dlq`. */
  dlqTopic?: string;
  /** RocksDB key stores. Default `./shredder-state`. */
  stateDir?: string;
  /** Subjects whose keys each partition keeps in memory at most, about 1.9 KB each (as SHREDDER_KEY_CACHE_SUBJECTS). Default 100,000. */
  keyCacheSubjects?: number;
  clientId?: string;
  /** TLS: true (the system's CAs), or a CA bundle and client certificate (PEM, as tls.connect takes them). */
  ssl?: boolean | TlsOptions;
  sasl?: KafkaConnection['sasl'];
  /** Erasure deadline for a keys topic this consumer has to create. Default one day. */
  erasureDeadlineMs?: number;
  /**
   * How long a partition may make no progress (its task cannot open, or its batches keep failing on an
   * infrastructure fault such as an HSM that is down) before health() says the consumer is not live
   * (as SHREDDER_TASK_OPEN_TIMEOUT_MS). Default 60 s.
   */
  faultBoundMs?: number;
  /** A pino logger; default: JSON lines at level `warn` to stdout. */
  logger?: Logger;
  /** Bring your own kafkajs client instead of brokers/clientId/ssl/sasl. */
  kafka?: Kafka;
  /** Field mode (as SHREDDER_FIELDS): the JSON paths the encryptor sealed field by field. */
  fields?: string[];
  /** Field mode (as SHREDDER_SUBJECT_FIELD): where the subject id is in the value. */
  subjectField?: string;
  /** JSON field mode: JSON text a shredded field becomes. Default `null`. */
  shreddedFieldValue?: string;
  /**
   * Field mode for values in the schema registry wire format (as SHREDDER_SCHEMA_REGISTRY_*): Avro,
   * Protobuf and JSON Schema records, their encrypted fields restored under the same schema id; a
   * shredded field becomes null where its schema allows it, else an empty string or empty bytes.
   */
  schemaRegistry?: SchemaRegistryConnection;
  /** With `schemaRegistry` (as SHREDDER_FIELD_TAGS): fields chosen by these schema tags. */
  fieldTags?: string[];
  /**
   * As SHREDDER_ERRORS_TOLERANCE: `all` (default) dead-letters a record that cannot be opened and goes
   * on; `none` stops at the first one, before the handler sees its batch (`failed` rejects).
   */
  errorsTolerance?: 'all' | 'none';
}

export interface DecryptedMessage {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  /** The subject id. */
  key: Buffer | null;
  /** Plaintext when `status` is `ok` (null for a tombstone); always null when `shredded` or `forget`. */
  value: Buffer | null;
  headers: IHeaders;
  /** `ok`; `shredded`: the subject's key is gone; `forget`: the subject was just forgotten, purge what you derived from it. */
  status: RecordStatus;
  /** Field mode, status `shredded`: the paths of the fields set to the shredded value (the rest is readable). */
  shreddedFields?: string[];
}

export interface DecryptingConsumerHandlers {
  /** Called per record, in order per partition. */
  eachMessage?: (message: DecryptedMessage) => Promise<void> | void;
  /** Called per batch (one topic-partition, in order) instead of eachMessage. */
  eachBatch?: (messages: DecryptedMessage[]) => Promise<void> | void;
}

/** The keyring the options give: one master key, several by id, or the caller's own. */
function keyringOf({ masterKey, masterKeys, masterKeyId, keyring }: DecryptingConsumerOptions): Keyring {
  const given = [masterKey, masterKeys, keyring].filter((k) => k !== undefined).length;
  if (given !== 1) throw new RangeError('DecryptingConsumer: give one of masterKey, masterKeys and keyring');
  if (keyring) return keyring;
  if (masterKey) return new Keyring([new LocalMasterKey(masterKey, masterKeyId ?? 1)], masterKeyId ?? 1);
  const ciphers = Object.entries(masterKeys!).map(([id, key]) => new LocalMasterKey(key, Number(id)));
  return new Keyring(ciphers, masterKeyId ?? Math.max(...ciphers.map((c) => c.id)));
}

export class DecryptingConsumer {
  private processor?: StreamProcessor;
  private readonly logger: Logger;
  private readonly kafka: Kafka;
  private readonly fields: FieldMode | undefined;
  private readonly schemaRegistry?: SchemaRegistryClient;
  /** Its Prometheus metrics (`metrics.registry`: merge it into the application's, or serve `metrics.text()`). */
  readonly metrics = new ProcessorMetrics('decrypting-consumer', { processMetrics: false });

  constructor(private readonly options: DecryptingConsumerOptions) {
    if (options.topics.length === 0) throw new RangeError('DecryptingConsumer: at least one topic is required');
    if (options.errorsTolerance !== undefined && options.errorsTolerance !== 'all' && options.errorsTolerance !== 'none') {
      throw new RangeError(`DecryptingConsumer: errorsTolerance must be 'all' or 'none', got ${JSON.stringify(options.errorsTolerance)}`);
    }
    if (options.keyCacheSubjects !== undefined && !(Number.isSafeInteger(options.keyCacheSubjects) && options.keyCacheSubjects >= 1)) {
      throw new RangeError(`DecryptingConsumer: keyCacheSubjects must be a positive integer, got ${String(options.keyCacheSubjects)}`);
    }
    this.schemaRegistry = options.schemaRegistry && new SchemaRegistryClient(options.schemaRegistry);
    const registry = this.schemaRegistry && { client: this.schemaRegistry, tags: options.fieldTags };
    this.fields = fieldMode(options.fields, options.subjectField, options.shreddedFieldValue, registry); // throws JsonPathError on a bad path
    this.logger = options.logger ?? createLogger('warn');
    this.kafka =
      options.kafka ??
      createKafka({
        brokers: options.brokers,
        clientId: options.clientId ?? 'kafka-shredder',
        ssl: options.ssl !== undefined && options.ssl !== false,
        tls: typeof options.ssl === 'object' ? options.ssl : undefined,
        sasl: options.sasl,
      }, this.logger);
  }

  /** Rejects when the consumer fails for good (kafkajs gave up restarting it). */
  get failed(): Promise<never> | undefined {
    return this.processor?.failed;
  }

  /** Alive and consuming (for the application's own health check). */
  health(): Health {
    return this.processor?.health() ?? STARTING_HEALTH;
  }

  /** Partitions assigned and their keys restored. */
  readiness(): Readiness {
    return this.processor?.readiness() ?? NOT_READY;
  }

  /** Joins the group, restores the keys of the assigned partitions and starts calling the handler. */
  async run(handlers: DecryptingConsumerHandlers): Promise<void> {
    const { eachMessage, eachBatch } = handlers;
    if (!eachMessage === !eachBatch) throw new RangeError('DecryptingConsumer.run: give eachMessage or eachBatch (one of them)');
    if (this.processor) throw new Error('DecryptingConsumer.run: already running');
    const options = this.options;
    const masterKey = keyringOf(options); // validates before connecting
    const settings = {
      keysTopic: options.keysTopic ?? 'encryption-keys',
      dlqTopic: options.dlqTopic ?? 'shredder-dlq',
      erasureDeadlineMs: options.erasureDeadlineMs ?? 86_400_000,
      plaintextRetentionMs: 86_400_000, // (creates no plaintext topic)
    };
    try {
      await this.start(handlers, masterKey, settings);
    } catch (err) {
      const processor = this.processor as StreamProcessor | undefined; // (set by start once it got that far)
      this.processor = undefined; // (run may be called again)
      await processor?.stop().catch(() => undefined); // (the start's error is the one to report)
      throw this.explained(err);
    }
  }

  /**
   * A connection error in one line naming the options to check (KafkaConnectionError), as the CLI
   * names its variables; other errors, and those of a caller's own `kafka` client, as they are.
   */
  private explained(err: unknown): unknown {
    const { options } = this;
    if (options.kafka) return err;
    const problem = explainConnectionError(err, {
      brokers: options.brokers,
      ssl: options.ssl !== undefined && options.ssl !== false,
      tls: typeof options.ssl === 'object' ? options.ssl : undefined,
      sasl: options.sasl,
    });
    return problem ? new KafkaConnectionError(inLibraryTerms(problem), err) : err;
  }

  private async start({ eachMessage, eachBatch }: DecryptingConsumerHandlers, masterKey: Keyring, settings: { keysTopic: string; dlqTopic: string; erasureDeadlineMs: number; plaintextRetentionMs: number }): Promise<void> {
    const options = this.options;
    // (layout problems name this consumer's options, not the commands' variables)
    const names = { routes: 'topics', keysTopic: 'keysTopic', dlqTopic: 'dlqTopic' };
    const layout = await prepareTopics(this.kafka, settings, { inputs: options.topics, outputs: [], plaintext: [], encrypted: options.topics, names }, this.logger);
    const ciphers = await loadAeadRegistry();
    const subjectRef = subjectRefFor(masterKey);
    this.processor = new StreamProcessor({
      name: 'decrypting-consumer',
      kafka: this.kafka,
      inputs: options.topics,
      keysTopic: settings.keysTopic,
      groupId: options.groupId,
      stateDir: options.stateDir ?? './shredder-state',
      keyCacheSubjects: options.keyCacheSubjects,
      retiredPseudonymMs: settings.erasureDeadlineMs,
      masterKey,
      checkpointMaxAgeMs: layout.keysTombstoneRetentionMs,
      transactional: false,
      followKeys: true,
      logger: this.logger,
      metrics: this.metrics,
      subjectRef,
      taskOpenTimeoutMs: options.faultBoundMs,
      handler: async (batch, task, heartbeat) => {
        const { topic, partition } = batch;
        const decrypted = await decryptBatch(batch.messages, { topic, partition, keys: task.keys, ciphers, catchUpKeys: () => task.catchUpKeys(), fields: this.fields });
        enforceErrorsTolerance(options.errorsTolerance ?? 'all', decrypted.deadLetters);
        const { deadLetters, valuesDropped } = fitDeadLetters(decrypted.deadLetters, layout.dlqMaxMessageBytes);
        const messages: DecryptedMessage[] = decrypted.records.map(({ message, status, value, shreddedFields, key }) => ({
          topic,
          partition,
          offset: message.offset,
          timestamp: message.timestamp,
          key: key ?? message.key, // (a pseudonym's subject id, SHREDDER_RECORD_KEYS=pseudonym)
          value,
          headers: (message.headers ?? {}) as IHeaders,
          status,
          ...(shreddedFields ? { shreddedFields } : {}),
        }));
        if (eachBatch) {
          await eachBatch(messages);
        } else {
          for (const message of messages) {
            await eachMessage!(message);
            await heartbeat();
          }
        }
        const { stats } = decrypted;
        this.metrics.countBatch(topic, topic, {
          in: batch.messages.length,
          out: messages.length,
          deadLettered: decrypted.deadLetters.length,
          deadLettersTruncated: valuesDropped,
          shredded: stats.shredded,
          forgetRequests: stats.forgets,
          cryptoNs: stats.cryptoNs,
          cryptoRecords: stats.decrypted,
        });
        logDeadLetters(this.logger, subjectRef, deadLetters);
        return { topicMessages: [{ topic: settings.dlqTopic, messages: deadLetters }] };
      },
    });
    await this.processor.start();
  }

  /** Leaves the group and closes the key stores; the handler is not called after this resolves. */
  async stop(): Promise<void> {
    await this.processor?.stop();
    this.schemaRegistry?.close(); // (its kept-alive connections; a later run() opens new ones)
  }
}
