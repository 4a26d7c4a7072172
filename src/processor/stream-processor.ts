// The consume-process-produce loop shared by the encryptor and the decryptor: one consumer group over
// the input topics with co-partitioned assignment, a task per owned partition (restored before use),
// and each input batch handled inside one transaction of its task, input offsets included.
import type { Admin, Batch, CompressionTypes, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { messageOf, outcomeOf } from '../errors/shredder-errors.js';
import { CONSUMER_RETRY } from '../kafka/client.js';
import { coPartitionedAssigner } from '../kafka/co-partitioned-assigner.js';
import { EndOffsets } from '../kafka/end-offsets.js';
import type { WrittenOffsets } from '../kafka/transactions.js';
import { keysReaderOptions } from '../keys/invalid-key-records.js';
import { KeysTopicReader } from '../keys/keys-topic-reader.js';
import type { Health, Readiness } from '../observability/health.js';
import type { Keyring } from '../keys/keyring.js';
import type { Logger, SubjectRef } from '../observability/logger.js';
import type { ProcessorMetrics } from '../observability/metrics.js';
import { closeAll } from '../errors/close-all.js';
import { Committer, type BatchWrites } from './committer.js';
import { PartitionTask, type RestoreStats } from './partition-task.js';
import { TASK_OPEN_TIMEOUT_MS, TaskManager } from './task-manager.js';

export { TASK_OPEN_TIMEOUT_MS } from './task-manager.js';

/** What one input batch writes, and what to do once that is committed or aborted. */
export interface BatchResult extends BatchWrites {
  /** Called after the commit with the next offset of each partition written to (records with an explicit partition). */
  committed?(written: WrittenOffsets): Promise<void>;
  aborted?(): void;
}

/** Fetch limits of the input consumer (see the constructor). */
const FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024;
const FETCH_BYTES = 16 * 1024 * 1024;
/** The group membership's heartbeat interval, also kept by a batch in progress (see onBatch). */
const HEARTBEAT_INTERVAL_MS = 1000;

/** `heartbeat` keeps the group membership alive during a long batch (an application's slow handler). */
export type BatchHandler = (batch: Batch, task: PartitionTask, heartbeat: () => Promise<void>) => BatchResult | Promise<BatchResult>;

/**
 * A handler's result from its batch function's: at once when that returned its value (every key in
 * memory), later when it returned a promise. A handler that stays synchronous is not made to wait for
 * a turn of the event loop (see onBatch).
 */
export function batchResult<T>(processed: T | Promise<T>, toResult: (processed: T) => BatchResult): BatchResult | Promise<BatchResult> {
  return processed instanceof Promise ? processed.then(toResult) : toResult(processed);
}

export interface StreamProcessorOptions {
  name: string;
  kafka: Kafka;
  inputs: string[];
  keysTopic: string;
  groupId: string;
  stateDir: string;
  masterKey: Keyring;
  /** Subjects whose keys each task keeps in memory at most (SHREDDER_KEY_CACHE_SUBJECTS; default: PartitionKeys'). */
  keyCacheSubjects?: number;
  /** New keys are pseudonymous (SHREDDER_RECORD_KEYS=pseudonym; see PartitionKeysOptions). */
  pseudonymousKeys?: boolean;
  /** See PartitionKeysOptions.retiredPseudonymMs. */
  retiredPseudonymMs?: number;
  checkpointMaxAgeMs: number;
  handler: BatchHandler;
  logger: Logger;
  /** Input batches of different tasks handled at once. */
  concurrency?: number;
  /**
   * true (default): each batch's writes and input offsets commit in one transaction of its task
   * (exactly-once). false: writes go through one idempotent producer, then the offsets are committed
   * (at-least-once: for an in-process consumer whose effects Kafka cannot make transactional).
   */
  transactional?: boolean;
  /** See TaskContext.followKeys. */
  followKeys?: boolean;
  /**
   * How long a partition may fail to make progress (its task cannot open, or its batches keep failing
   * on an infrastructure fault) before the process reports itself unhealthy. Default TASK_OPEN_TIMEOUT_MS.
   */
  taskOpenTimeoutMs?: number;
  /** After a partition's task was closed because the partition moved to another instance. */
  onRevoked?: (partition: number) => Promise<void>;
  /**
   * Commit the offset past a batch that holds only transaction markers (read_committed hands it over
   * empty), so that a caught-up partition's committed offset reaches its end: how a migration (reencrypt)
   * tells its lag is 0. Transactional processors only.
   */
  commitMarkerBatches?: boolean;
  /** Produce requests are cut at this many bytes (default MAX_REQUEST_BYTES; see requestBytesFor). */
  maxRequestBytes?: number;
  /**
   * Of the record batches it writes (default none): the decryptor's KAFKA_COMPRESSION. The encryptor
   * writes uncompressed: ciphertext does not compress.
   */
  compression?: CompressionTypes;
  metrics?: ProcessorMetrics;
  /** The logs' subject reference (default: derived from masterKey when first needed). */
  subjectRef?: SubjectRef;
}

export class StreamProcessor {
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly reader: KeysTopicReader;
  private readonly endOffsets: EndOffsets;
  private readonly tasks: TaskManager;
  private readonly committer: Committer;
  private stopping = false;
  private consumerState: Health['consumer'] = 'starting';
  private joinedGroup = false;
  /** The heartbeat of the batch being handled: a wait for the keys partition inside a batch keeps the membership alive with it. */
  private heartbeat?: () => Promise<void>;
  /** How long the handler took for each recent batch (ms) and its size: what processing adds to a record's latency. */
  readonly batchTimings: { ms: number; records: number }[] = [];
  /** Rejects when the consumer crashed and kafkajs will not restart it, or a record was not tolerated. */
  readonly failed: Promise<never>;
  private fail!: (error: Error) => void;
  /** Why the processor failed for good, for /healthz. */
  private failure?: string;
  /**
   * Batches whose commit failed with its outcome unknown (a broker that crashed while ending the
   * transaction may have committed it): where each partition's input topics were left, to be checked
   * against the group's committed offsets before the partition resumes.
   */
  private readonly unknownCommits = new Map<number, { topic: string; firstOffset: string }[]>();

  constructor(private readonly options: StreamProcessorOptions) {
    const { kafka, groupId } = options;
    this.admin = kafka.admin();
    this.endOffsets = new EndOffsets(kafka, this.admin);
    this.reader = new KeysTopicReader(kafka, options.keysTopic, groupId, options.logger, keysReaderOptions(options.keysTopic, options.logger, options.masterKey, options.metrics, options.subjectRef));
    this.consumer = kafka.consumer({
      groupId,
      partitionAssigners: [coPartitionedAssigner],
      readUncommitted: false,
      maxWaitTimeInMs: 250,
      // Each batch is one transaction, and a transaction's fixed cost (its coordinator round trips, the
      // offsets commit, the markers) is paid per batch: fetch up to 4 MiB a partition (kafkajs: 1 MiB),
      // about 13k records of 256 B, so a backlog drains in fewer, larger transactions. A partition's
      // batch is held in memory until its transaction commits.
      maxBytesPerPartition: FETCH_BYTES_PER_PARTITION,
      maxBytes: FETCH_BYTES,
      // A crashed instance's partitions wait for its session to expire before they move: keep it short.
      sessionTimeout: 10_000,
      heartbeatInterval: HEARTBEAT_INTERVAL_MS,
      retry: CONSUMER_RETRY,
    });
    const inputs = (partition: number) => options.inputs.map((topic) => ({ topic, partitions: [partition] }));
    this.tasks = new TaskManager({
      name: options.name,
      logger: options.logger,
      metrics: options.metrics,
      faultBoundMs: options.taskOpenTimeoutMs ?? TASK_OPEN_TIMEOUT_MS,
      openTask: (partition, onRestoreProgress) => this.openTask(partition, onRestoreProgress),
      pause: (partition) => this.consumer.pause(inputs(partition)),
      // (a processor that failed for good, e.g. on a record not tolerated, fetches nothing more)
      resume: (partition) => {
        if (this.failure !== undefined) return;
        if (!this.unknownCommits.has(partition)) return this.consumer.resume(inputs(partition));
        void this.resumeAfterUnknownCommits(partition).then(() => this.failure === undefined && this.consumer.resume(inputs(partition)));
      },
      onRevoked: options.onRevoked,
    });
    this.committer = new Committer({
      kafka,
      consumer: this.consumer,
      groupId,
      transactional: this.transactional,
      maxRequestBytes: options.maxRequestBytes,
      compression: options.compression,
      trackCommitted: options.commitMarkerBatches === true,
    });
    this.failed = new Promise<never>((_, reject) => {
      const crashed = (error: Error) => {
        if (this.stopping || this.failure !== undefined) return;
        this.consumerState = 'crashed';
        this.failure = error.message;
        reject(error);
      };
      this.fail = crashed;
      this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
        if (payload.restart) this.consumerState = 'restarting'; // kafkajs restarts it: still alive
        else crashed(payload.error);
      });
      // without its keys reader no task can restore or catch up: as fatal as the consumer crashing
      this.reader.failed.catch(crashed);
    });
    if (options.commitMarkerBatches && this.transactional) {
      this.consumer.on(this.consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.batchSize !== 0 || !options.inputs.includes(payload.topic)) return;
        this.commitMarkers(payload.topic, payload.partition, Number(payload.lastOffset)).catch((err: unknown) =>
          options.logger.debug({ topic: payload.topic, partition: payload.partition, error: messageOf(err) }, 'committing past transaction markers failed; the next batch commits past them'),
        );
      });
    }
    this.consumer.on(this.consumer.events.STOP, () => {
      if (this.stopping) this.consumerState = 'stopped'; // (a crash is reported by CRASH, a restart too)
    });
    // observed by whoever awaits it (the CLI, the library's caller); never an unhandled rejection
    this.failed.catch(() => undefined);
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      const owned = new Set<number>();
      for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
        if (options.inputs.includes(topic)) partitions.forEach((p) => owned.add(p));
      }
      options.logger.info({ processor: options.name, partitions: [...owned].sort((a, b) => a - b) }, 'partitions assigned');
      this.joinedGroup = true;
      this.consumerState = 'running';
      this.tasks.assign(owned).catch((err: unknown) => options.logger.error({ processor: options.name, error: messageOf(err) }, 'applying the new assignment failed'));
    });
  }

  /** Partitions this instance owns after the last rebalance. */
  get assignedPartitions(): number[] {
    return this.tasks.assignedPartitions;
  }

  get restores(): RestoreStats[] {
    return this.tasks.restores;
  }

  async start(): Promise<void> {
    await this.admin.connect();
    await this.reader.start();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: this.options.inputs, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      // tasks are independent (each its own producer and keys): let their transactions overlap
      partitionsConsumedConcurrently: this.options.concurrency ?? 4,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  private openTask(partition: number, onRestoreProgress: (fraction: number) => void): Promise<PartitionTask> {
    const { options } = this;
    return PartitionTask.open(partition, {
      kafka: options.kafka,
      reader: this.reader,
      masterKey: options.masterKey,
      keysTopic: options.keysTopic,
      groupId: options.groupId,
      stateDir: options.stateDir,
      keyCacheSubjects: options.keyCacheSubjects,
      pseudonymousKeys: options.pseudonymousKeys,
      retiredPseudonymMs: options.retiredPseudonymMs,
      checkpointMaxAgeMs: options.checkpointMaxAgeMs,
      transactional: this.transactional,
      followKeys: options.followKeys,
      endOffsets: this.endOffsets,
      logger: options.logger,
      onHeartbeat: () => this.heartbeat?.() ?? Promise.resolve(),
      onRestoreProgress: (_, fraction) => onRestoreProgress(fraction),
    });
  }

  /** The open tasks of the partitions this instance owns (key stores restored), by partition. */
  openTasks(): Promise<PartitionTask[]> {
    return this.tasks.openTasks();
  }

  /** The task of a partition this instance owns, if it has been opened. */
  ownedTask(partition: number): Promise<PartitionTask> | undefined {
    return this.tasks.ownedTask(partition);
  }

  private get transactional(): boolean {
    return this.options.transactional ?? true;
  }

  /**
   * Leaves a batch for later: its partition is fetched again from the batch's first record once the
   * partition resumes (kafkajs applies a seek at the partition's next fetch, after it resolved this
   * batch). Never waits here: a batch waiting in eachBatch would hold up every partition's fetches.
   */
  private later(batch: Batch): void {
    this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: batch.messages[0].offset });
  }

  private async onBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const { partition } = batch;
    const task = this.tasks.readyTask(partition); // (not ready: the partition is paused until it is)
    if (!task) return this.later(batch);
    this.heartbeat = heartbeat;
    // kafkajs heartbeats only once a batch is done, and fetches again only once every batch of a fetch
    // is: a round of large batches (a backlog of new subjects: seconds each, side by side on one
    // thread) outlasted the 10 s session, and the group moved on without this instance. So a batch in
    // progress keeps the membership alive itself. A failed heartbeat (a rebalance, a lost membership) is
    // left to kafkajs, whose own heartbeat after the batch rejoins; a stale batch is never committed.
    const keepAlive = setInterval(() => heartbeat().catch(() => undefined), HEARTBEAT_INTERVAL_MS);
    try {
      await this.onTaskBatch(batch, task, heartbeat, isRunning, isStale);
    } finally {
      clearInterval(keepAlive);
    }
  }

  private async onTaskBatch(batch: Batch, task: PartitionTask, heartbeat: () => Promise<void>, isRunning: () => boolean, isStale: () => boolean): Promise<void> {
    const { partition } = batch;
    await task.exclusive(async () => {
      if (!isRunning() || isStale()) return;
      // (a batch of another input topic of this task failed meanwhile: the task is closed)
      if (this.tasks.readyTask(partition) !== task) return this.later(batch);
      let result: BatchResult | undefined;
      let committing = false;
      let committed = false;
      try {
        const handlerStarted = process.hrtime.bigint();
        // (a handler that returns its result, not a promise, is not made to wait for a turn of the event loop)
        const handled = this.options.handler(batch, task, heartbeat);
        result = handled instanceof Promise ? await handled : handled;
        this.batchTimings.push({ ms: Number(process.hrtime.bigint() - handlerStarted) / 1e6, records: batch.messages.length });
        if (this.batchTimings.length > 10_000) this.batchTimings.splice(0, 5_000);
        committing = true;
        const written = await this.committer.commit(task, batch, result);
        committed = true;
        this.tasks.batchCommitted(partition);
        await result.committed?.(written);
        const metrics = this.options.metrics;
        if (metrics) {
          metrics.batchRecords.observe({ topic: batch.topic }, batch.messages.length);
          metrics.batchSeconds.observe({ topic: batch.topic }, Number(process.hrtime.bigint() - handlerStarted) / 1e9);
          metrics.consumerLag.set({ topic: batch.topic, partition: String(partition) }, Math.max(0, Number(batch.offsetLag())));
        }
      } catch (err) {
        if (!committed) result?.aborted?.();
        // (committed, but its key changes could not be stored: the keys topic has them, and the task
        // reopened below restores them from there)
        task.keys.rollback();
        if (outcomeOf(err) === 'exit-fatal') {
          // Stops for good (a record not tolerated): no further batch is fetched, and this one (not
          // committed) is left as it was.
          this.consumer.pause(this.options.inputs.map((topic) => ({ topic })));
          this.options.logger.error({ processor: this.options.name, topic: batch.topic, partition, error: messageOf(err) }, 'record not tolerated');
          this.fail(err as Error);
          return;
        }
        // Anything else is no record's fault (record errors were dead-lettered by the handler): nothing
        // of the batch is committed, and it is read again once the task has reopened after a back-off.
        // A batch that did commit is not read again: its partition goes on after it.
        if (!committed) {
          this.later(batch);
          const left = { topic: batch.topic, firstOffset: batch.messages[0].offset };
          if (committing) this.unknownCommits.set(partition, [...(this.unknownCommits.get(partition) ?? []).filter((u) => u.topic !== batch.topic), left]);
        }
        this.tasks.batchFailed(partition, task, err, committed);
      }
    });
  }

  /**
   * Before a partition resumes after a failed commit: if the transaction did commit after all (the
   * group's committed offset is past the batch's first record), the partition goes on from there
   * instead of reading the batch again, which would write its records twice. Read when the partition
   * resumes, after the back-off, so that a transaction the coordinator was still completing is settled.
   */
  private async resumeAfterUnknownCommits(partition: number): Promise<void> {
    const unknown = this.unknownCommits.get(partition);
    if (!unknown) return;
    this.unknownCommits.delete(partition);
    try {
      const committed = await this.admin.fetchOffsets({ groupId: this.options.groupId, topics: unknown.map((u) => u.topic) });
      for (const { topic, firstOffset } of unknown) {
        const committedOffset = committed.find((c) => c.topic === topic)?.partitions.find((p) => p.partition === partition)?.offset;
        if (committedOffset !== undefined && BigInt(committedOffset) > BigInt(firstOffset)) {
          this.options.logger.warn({ processor: this.options.name, topic, partition, committedOffset }, 'a commit that seemed to fail had committed: going on after it');
          this.consumer.seek({ topic, partition, offset: committedOffset });
        }
      }
    } catch (err) {
      // (the batches are read again, as without this check: written twice at worst, never lost)
      this.options.logger.warn({ processor: this.options.name, partition, error: messageOf(err) }, 'could not read the committed offsets after a failed commit');
    }
  }

  /** See StreamProcessorOptions.commitMarkerBatches. */
  private async commitMarkers(topic: string, partition: number, lastOffset: number): Promise<void> {
    const task = await this.tasks.ownedTask(partition);
    if (!task || this.stopping) return;
    await this.committer.commitMarkers(task, topic, partition, lastOffset, () => !this.stopping && this.tasks.owns(partition));
  }

  health(): Health {
    const consumer = this.consumerState;
    if (this.failure !== undefined) return { live: false, consumer, problem: this.failure };
    const problem = this.tasks.problem();
    if (problem !== undefined) return { live: false, consumer, problem };
    return { live: consumer !== 'crashed' && consumer !== 'stopped', consumer };
  }

  readiness(): Readiness {
    const partitions = this.tasks.partitions();
    const ready = !this.stopping && this.joinedGroup && this.consumerState === 'running' && partitions.every((p) => p.state === 'ready');
    return { ready, joinedGroup: this.joinedGroup, stopping: this.stopping, partitions };
  }

  /** Stops consuming and closes everything, going on after a failure; rethrows the first. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await closeAll([
      // the keys reader first: a batch waiting for a restore or a key fails now instead of holding up
      // the consumer's disconnect (it is not committed, so it is read again after the restart)
      () => this.reader.stop(),
      () => this.consumer.disconnect(),
      () => this.tasks.close(),
      () => this.committer.close(),
      () => this.endOffsets.close(),
      () => this.admin.disconnect(),
    ]);
  }
}
