// The old keyspace of a re-encryption: the source keys topic, read like the decryptor reads its keys
// (restored per partition into a RocksDB store of its own, then followed, read_committed), and never
// written. A partition's keys open when its first batch needs them and close when it is revoked.
import type { Kafka } from 'kafkajs';
import { closeAll } from '../errors/close-all.js';
import { EndOffsets } from '../kafka/end-offsets.js';
import type { Keyring } from '../keys/keyring.js';
import { keysReaderOptions } from '../keys/invalid-key-records.js';
import { KeysTopicReader } from '../keys/keys-topic-reader.js';
import type { Logger, SubjectRef } from '../observability/logger.js';
import type { ProcessorMetrics } from '../observability/metrics.js';
import { PartitionTask } from '../processor/partition-task.js';

export interface SourceKeyspaceOptions {
  kafka: Kafka;
  keysTopic: string;
  groupId: string;
  stateDir: string;
  keyring: Keyring;
  checkpointMaxAgeMs: number;
  /** See PartitionKeysOptions.retiredPseudonymMs: a forget marker read after its tombstone still finds its subject. */
  retiredPseudonymMs?: number;
  logger: Logger;
  /** Where the source keys topic's unreadable records are counted (shredder_keys_topic_invalid_values_total). */
  metrics?: ProcessorMetrics;
  subjectRef?: SubjectRef;
}

export class SourceKeyspace {
  private readonly admin;
  private readonly endOffsets: EndOffsets;
  private readonly reader: KeysTopicReader;
  private readonly tasks = new Map<number, Promise<PartitionTask>>();

  constructor(private readonly options: SourceKeyspaceOptions) {
    this.admin = options.kafka.admin();
    this.endOffsets = new EndOffsets(options.kafka, this.admin);
    const readerOptions = keysReaderOptions(options.keysTopic, options.logger.child({ keyspace: 'source' }), options.keyring, options.metrics, options.subjectRef);
    this.reader = new KeysTopicReader(options.kafka, options.keysTopic, `${options.groupId}.source`, options.logger, readerOptions);
  }

  /** Rejects when the source keys reader fails for good. */
  get failed(): Promise<never> {
    return this.reader.failed;
  }

  async start(): Promise<void> {
    await this.admin.connect();
    await this.reader.start();
  }

  /** The source keys of `partition`, restored and followed (heartbeating through a long restore). */
  partition(partition: number, heartbeat: () => Promise<void>): Promise<PartitionTask> {
    let task = this.tasks.get(partition);
    if (!task) {
      const { kafka, keysTopic, groupId, stateDir, keyring, checkpointMaxAgeMs, retiredPseudonymMs, logger } = this.options;
      task = PartitionTask.open(partition, {
        kafka,
        reader: this.reader,
        masterKey: keyring,
        keysTopic,
        groupId,
        stateDir,
        checkpointMaxAgeMs,
        retiredPseudonymMs,
        transactional: false,
        followKeys: true,
        endOffsets: this.endOffsets,
        logger: logger.child({ keyspace: 'source' }),
        onHeartbeat: heartbeat,
      });
      this.tasks.set(partition, task);
      task.catch(() => this.tasks.get(partition) === task && this.tasks.delete(partition));
    }
    return task;
  }

  /** Closes a revoked partition's source keys and deletes their store (state moves through Kafka). */
  async revoke(partition: number): Promise<void> {
    const task = this.tasks.get(partition);
    this.tasks.delete(partition);
    await task?.then((t) => t.close(true), () => undefined); // (an attempt that failed to open left nothing open)
  }

  /** Closes the reader, every task and the admin client, going on after a failure; rethrows the first. */
  async stop(): Promise<void> {
    const tasks = [...this.tasks.values()];
    this.tasks.clear();
    await closeAll([
      () => this.reader.stop(),
      // (an attempt that failed to open left nothing open)
      ...tasks.map((task) => () => task.then((t) => t.close(false), () => undefined)),
      () => this.endOffsets.close(),
      () => this.admin.disconnect(),
    ]);
  }
}
