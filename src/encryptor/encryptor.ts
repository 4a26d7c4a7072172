// `kafka-shredder encrypt`: the encryptor processor. Reads each route's plaintext input, seals every
// record under its subject's data key in the WebAssembly core (a batch per call), and writes the
// encrypted records, new keys, tombstones and dead letters with the input offsets in one transaction.
import { availableParallelism } from 'node:os';
import type { Batch } from 'kafkajs';
import { loadAeadRegistry, type AeadRegistry } from '../crypto/index.js';
import { SealingThread } from '../crypto/off-thread/sealing-thread.js';
import { encryptorTopicRoles } from '../kafka/topics.js';
import type { PartitionTask } from '../processor/partition-task.js';
import { RouteProcessor } from '../processor/route-processor.js';
import { batchResult, StreamProcessor, type BatchResult } from '../processor/stream-processor.js';
import { enforceErrorsTolerance } from '../processor/errors-tolerance.js';
import { encryptBatch, type EncryptedBatch } from './encrypt-batch.js';
import { keyRecordMessage } from './output-records.js';
import { ErasureAudit } from './erasure-audit.js';
import { KeyRewrapper } from './key-rewrapper.js';
import { keysSegmentRoller, type SegmentRoller } from './segment-roll.js';

export interface EncryptorStats {
  recordsIn: number;
  recordsOut: number;
  deadLettered: number;
  keysCreated: number;
  /** Subjects whose live key a forget destroyed (once per subject, whatever the number of routes). */
  subjectsForgotten: number;
  /** Forget requests carried out (one per route the request was written to). */
  forgetRequests: number;
  bornShredded: number;
  /** Envelopes sealed on the sealing thread (large batches), not on the main thread. */
  sealedOffThread: number;
  /** Of those, envelopes of batches sealed from the fetched bytes (seal-from-fetch.ts). */
  sealedFromFetch: number;
  /** Keys re-wrapped under the current master key (rotation). */
  keysRewrapped: number;
}

export class Encryptor extends RouteProcessor {
  readonly stats: EncryptorStats = { recordsIn: 0, recordsOut: 0, deadLettered: 0, keysCreated: 0, subjectsForgotten: 0, forgetRequests: 0, bornShredded: 0, sealedOffThread: 0, sealedFromFetch: 0, keysRewrapped: 0 };
  private roller?: SegmentRoller;
  private rewrapper?: KeyRewrapper;
  private audit?: ErasureAudit;
  /** The master key ids each partition's gauge series were last set for. */
  private readonly countedIds = new Map<number, number[]>();
  /**
   * Seals large batches off the main thread, which kafkajs needs for every partition; with a single
   * CPU the thread would only compete with the main thread, so there is none.
   */
  private readonly sealingThread = availableParallelism() >= 2 ? new SealingThread() : undefined;

  async start(): Promise<void> {
    const { config } = this;
    await this.prepareKeys();
    const layout = await this.prepareTopics(encryptorTopicRoles(config.routes, config.auditTopic));
    await this.checkSchemas(config.routes.map((r) => r.from));
    this.audit = await this.whenKeysAvailable('deriving the audit key', () => ErasureAudit.of(config, this.keys.keyring, this.subjectRef));
    const ciphers = await loadAeadRegistry();
    this.roller = keysSegmentRoller(() => this.processor, config.keysTopic, config.erasureDeadlineMs, this.logger, this.metrics);
    this.processor = new StreamProcessor({
      ...this.commonOptions(layout),
      name: 'encrypt',
      handler: (batch, task) => this.encrypt(batch, task, ciphers, layout.outputsMaxMessageBytes.get(this.routes.get(batch.topic)!)!),
    });
    await this.processor.start();
    const { keyring } = this.keys;
    this.rewrapper = new KeyRewrapper({
      keyring,
      keysTopic: config.keysTopic,
      keysPerSecond: config.rewrapKeysPerSecond,
      openTasks: () => this.processor!.openTasks(),
      logger: this.logger,
      subjectRef: this.subjectRef,
      onRewrapped: (partition, keys) => {
        this.stats.keysRewrapped += keys;
        this.metrics.keysRewrapped.inc({ partition: String(partition) }, keys);
        // the superseded values go with the next compaction: roll the segment as after a forget
        this.roller?.forgotten(partition);
      },
      onCounted: (partition, counts) => {
        for (const id of this.countedIds.get(partition) ?? []) this.metrics.keysByMasterKey.remove({ partition: String(partition), master_key_id: String(id) });
        for (const [id, n] of counts) this.metrics.keysByMasterKey.set({ partition: String(partition), master_key_id: String(id) }, n);
        this.countedIds.set(partition, [...counts.keys()]);
      },
    });
    this.rewrapper.start();
    this.logger.info(
      { routes: config.routes, partitions: layout.partitions, algorithm: config.algorithm, keyProvider: keyring.provider, masterKeyId: keyring.currentId, masterKeyIds: keyring.ids },
      'encryptor started',
    );
  }

  /** Synchronous when every key of the batch is in memory: see encryptBatch. */
  private encrypt(batch: Batch, task: PartitionTask, ciphers: AeadRegistry, maxRecordBytes: number): BatchResult | Promise<BatchResult> {
    const encrypted = encryptBatch(batch.messages, {
      topic: batch.topic,
      partition: batch.partition,
      keys: task.keys,
      ciphers,
      algorithm: this.config.algorithm,
      now: Date.now,
      maxRecordBytes,
      fields: this.fields,
      sealingThread: this.sealingThread,
    });
    return batchResult(encrypted, (e) => this.written(batch, task, e));
  }

  /** What the transaction of an encrypted batch writes, and what follows its commit. */
  private written(batch: Batch, task: PartitionTask, encrypted: EncryptedBatch): BatchResult {
    const { partition } = batch;
    const { keysTopic, dlqTopic } = this.config;
    enforceErrorsTolerance(this.config.errorsTolerance, encrypted.deadLetters);
    const { deadLetters, valuesDropped } = this.fitDeadLetters(encrypted.deadLetters);
    return {
      topicMessages: [
        { topic: this.routes.get(batch.topic)!, messages: encrypted.outputs },
        { topic: keysTopic, messages: encrypted.keyRecords.map((r) => keyRecordMessage(r, partition)) },
        { topic: dlqTopic, messages: deadLetters },
      ],
      followUp: this.audit?.followUp({ topic: batch.topic, partition }, encrypted.forgets, encrypted.keyRecords.length),
      committed: async (written) => {
        encrypted.release?.(); // (its records are written: their envelopes' memory is reused)
        await task.keys.commit(written.get(`${keysTopic}/${partition}`));
        const s = this.stats;
        s.recordsIn += batch.messages.length;
        s.recordsOut += encrypted.outputs.length;
        s.deadLettered += encrypted.deadLetters.length;
        s.keysCreated += encrypted.stats.keysCreated;
        s.subjectsForgotten += encrypted.stats.keysDestroyed;
        s.forgetRequests += encrypted.stats.forgotten;
        s.bornShredded += encrypted.stats.bornShredded;
        s.sealedOffThread += encrypted.stats.sealedOffThread;
        s.sealedFromFetch += encrypted.stats.sealedFromFetch;
        this.metrics.countBatch(this.route(batch.topic), batch.topic, {
          in: batch.messages.length,
          out: encrypted.outputs.length,
          deadLettered: encrypted.deadLetters.length,
          deadLettersTruncated: valuesDropped,
          keysCreated: encrypted.stats.keysCreated,
          forgetRequests: encrypted.stats.forgotten,
          subjectsForgotten: encrypted.stats.keysDestroyed,
          cryptoNs: encrypted.stats.cryptoNs,
          cryptoRecords: encrypted.stats.encrypted,
        });
        if (encrypted.stats.forgotten > 0) this.roller?.forgotten(partition);
        for (const record of encrypted.keyRecords.filter((r) => r.value === null)) {
          this.logger.info({ subject: this.subjectRef(record.subject), partition }, 'subject forgotten: key destroyed');
        }
        this.logDeadLetters(deadLetters);
      },
    };
  }

  async stop(): Promise<void> {
    this.stopRequested.abort();
    await this.rewrapper?.stop();
    this.roller?.stop();
    await this.processor?.stop();
    await this.sealingThread?.close();
    await this.closeKeyring();
    this.logger.info(this.stats, 'encryptor stopped');
  }
}
