// The consume-process-produce loop shared by the encryptor and the decryptor: one consumer group over
// the input topics with co-partitioned assignment, a task per owned partition (restored before use),
// and each input batch handled inside one transaction of its task, input offsets included.
import { Partitioners, type Admin, type Batch, type CompressionTypes, type Consumer, type EachBatchPayload, type Kafka, type Producer, type TopicMessages } from 'kafkajs';
import { coPartitionedAssigner } from '../kafka/co-partitioned-assigner.js';
import { EndOffsets } from '../kafka/end-offsets.js';
import { chunkMessages, commitTransaction, type WrittenOffsets } from '../kafka/transactions.js';
import { keysReaderOptions } from '../keys/invalid-key-records.js';
import { KeysTopicReader } from '../keys/keys-topic-reader.js';
import { IntolerableRecordError } from './errors-tolerance.js';
import type { Health, Readiness } from '../observability/health.js';
import type { Keyring } from '../keys/keyring.js';
import type { Logger, SubjectRef } from '../observability/logger.js';
import type { ProcessorMetrics } from '../observability/metrics.js';
import { PartitionTask, type RestoreStats } from './partition-task.js';
import { TaskLifecycle, type OpenFailure } from './task-lifecycle.js';

/** What one input batch writes, and what to do once that is committed or aborted. */
export interface BatchResult {
  topicMessages: TopicMessages[];
  /** Transactional only: records made from the offsets the others got, in the same transaction (see TransactionalWrite.followUp). */
  followUp?: (written: WrittenOffsets) => TopicMessages[];
  /** Called after the commit with the next offset of each partition written to (records with an explicit partition). */
  committed?(written: WrittenOffsets): Promise<void>;
  aborted?(): void;
}

/** Fetch limits of the input consumer (see the constructor). */
const FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024;
const FETCH_BYTES = 16 * 1024 * 1024;

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
   * How long a partition's task may keep failing to open (its key store, its producer) before the
   * process reports itself unhealthy. Default TASK_OPEN_TIMEOUT_MS.
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

/** Default of StreamProcessorOptions.taskOpenTimeoutMs (SHREDDER_TASK_OPEN_TIMEOUT_MS). */
export const TASK_OPEN_TIMEOUT_MS = 60_000;
/** Retries of a task that could not be opened back off from the first to the last delay. */
const TASK_RETRY_FIRST_MS = 2000;
const TASK_RETRY_MAX_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class StreamProcessor {
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly reader: KeysTopicReader;
  private readonly endOffsets: EndOffsets;
  /** Each partition's task and where it is in its life (task-lifecycle.ts), from its first batch or assignment until it is revoked. */
  private readonly lifecycles = new Map<number, TaskLifecycle>();
  private assigned = new Set<number>();
  private stopping = false;
  private plainProducer?: Promise<Producer>;
  private rebalancing: Promise<void> = Promise.resolve();
  private consumerState: Health['consumer'] = 'starting';
  private joinedGroup = false;
  /** The heartbeat of the batch being handled: a long restore keeps the membership alive with it. */
  private heartbeat?: () => Promise<void>;
  readonly restores: RestoreStats[] = [];
  /** How long the handler took for each recent batch (ms) and its size: what processing adds to a record's latency. */
  readonly batchTimings: { ms: number; records: number }[] = [];
  /** Rejects when the consumer crashed and kafkajs will not restart it, or a record was not tolerated. */
  readonly failed: Promise<never>;
  private fail!: (error: Error) => void;
  /** Why the processor failed for good, for /healthz. */
  private failure?: string;
  /** The next offset committed last, per input `topic/partition` (see commitMarkers). */
  private readonly committedNext = new Map<string, number>();
  /** The error line of taskOpenFailed was written for the current run of failures. */
  private reportedUnhealthy = false;

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
      heartbeatInterval: 1000,
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
    if (options.commitMarkerBatches && (options.transactional ?? true)) {
      this.consumer.on(this.consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.batchSize !== 0 || !options.inputs.includes(payload.topic)) return;
        this.commitMarkers(payload.topic, payload.partition, Number(payload.lastOffset)).catch((err: Error) =>
          options.logger.debug({ topic: payload.topic, partition: payload.partition, error: err.message }, 'committing past transaction markers failed; the next batch commits past them'),
        );
      });
    }
    this.consumer.on(this.consumer.events.STOP, () => {
      if (this.stopping) this.consumerState = 'stopped'; // (a crash is reported by CRASH, a restart too)
    });
    this.failed.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      const owned = new Set<number>();
      for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
        if (options.inputs.includes(topic)) partitions.forEach((p) => owned.add(p));
      }
      options.logger.info({ processor: options.name, partitions: [...owned].sort((a, b) => a - b) }, 'partitions assigned');
      this.joinedGroup = true;
      this.consumerState = 'running';
      this.assigned = owned;
      // one rebalance at a time, each applying the latest assignment (a quicker later one makes an
      // earlier one's work moot)
      this.rebalancing = this.rebalancing.then(() => this.applyAssignment()).catch(() => {});
    });
  }

  /** Partitions this instance owns after the last rebalance. */
  get assignedPartitions(): number[] {
    return [...this.assigned].sort((a, b) => a - b);
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

  private lifecycle(partition: number): TaskLifecycle {
    let lifecycle = this.lifecycles.get(partition);
    if (!lifecycle) this.lifecycles.set(partition, (lifecycle = new TaskLifecycle(partition)));
    return lifecycle;
  }

  /** The partition's task: the open one, the attempt under way, or a new attempt. */
  private task(partition: number): Promise<PartitionTask> {
    const lifecycle = this.lifecycle(partition);
    const current = lifecycle.task;
    if (current) return current;
    if (lifecycle.state === 'closed') return Promise.reject(new Error(`partition ${partition}: its task is closed: the processor is stopping`));
    const task = PartitionTask.open(partition, {
      kafka: this.options.kafka,
      reader: this.reader,
      masterKey: this.options.masterKey,
      keysTopic: this.options.keysTopic,
      groupId: this.options.groupId,
      stateDir: this.options.stateDir,
      checkpointMaxAgeMs: this.options.checkpointMaxAgeMs,
      transactional: this.transactional,
      followKeys: this.options.followKeys,
      endOffsets: this.endOffsets,
      logger: this.options.logger,
      onHeartbeat: () => this.heartbeat?.() ?? Promise.resolve(),
      onRestoreProgress: (p, fraction) => {
        lifecycle.restoreProgress = fraction;
        this.options.metrics?.restoreProgress.set({ partition: String(p) }, fraction);
      },
    });
    lifecycle.opening(task);
    task.then(
      (t) => {
        const failure = lifecycle.openedBy(task, t);
        if (failure) {
          this.unhealthyReportEnds();
          this.options.logger.info({ processor: this.options.name, partition, attempts: failure.attempts, failedForMs: Date.now() - failure.since }, 'task opened after failed attempts');
        }
        this.restores.push(t.restoreStats);
        this.options.metrics?.restoredRecords.inc({ partition: String(partition) }, t.restoreStats.records);
      },
      (err: Error) => {
        if (this.stopping || lifecycle.state === 'closed' || !this.assigned.has(partition)) return lifecycle.failedBy(task, undefined);
        const attempts = this.taskOpenFailed(lifecycle, task, err);
        // Retried here, not by the batches waiting for it (see taskWhenOpen), so that a task that
        // cannot open costs one attempt per delay. An idle partition gets no batch to retry it either.
        const delay = Math.min(TASK_RETRY_MAX_MS, TASK_RETRY_FIRST_MS * 2 ** (attempts - 1));
        setTimeout(() => {
          if (!this.stopping && this.lifecycles.get(partition) === lifecycle && lifecycle.state !== 'closed' && this.assigned.has(partition) && !lifecycle.task) this.task(partition).catch(() => {});
        }, delay).unref();
      },
    );
    return task;
  }

  private get taskOpenTimeoutMs(): number {
    return this.options.taskOpenTimeoutMs ?? TASK_OPEN_TIMEOUT_MS;
  }

  /** The lifecycles whose tasks keep failing to open, by partition. */
  private failing(): TaskLifecycle[] {
    return [...this.lifecycles.values()].filter((l) => l.openFailure !== undefined).sort((a, b) => a.partition - b.partition);
  }

  /**
   * Notes a failed attempt to open a partition's task; returns the attempts so far. A reason is logged
   * once as a warning (other partitions failing the same way, and the retries, at debug level), and
   * one error line says when the failures have lasted taskOpenTimeoutMs: from then on /healthz says
   * the process is unhealthy, until every task has opened.
   */
  private taskOpenFailed(lifecycle: TaskLifecycle, attempt: Promise<PartitionTask>, err: Error): number {
    const { logger, name } = this.options;
    const { partition } = lifecycle;
    let failure = lifecycle.openFailure;
    const fields = { processor: name, partition, error: err.message };
    // (the same failure on other partitions differs only by the partition's store path: compared by its code)
    const reason = (err as NodeJS.ErrnoException).code ?? err.message;
    const reasonIsNew = !this.failing().some((l) => l.openFailure!.reason === reason);
    if (!failure) {
      const timeoutMs = this.taskOpenTimeoutMs;
      const timer = setTimeout(() => {
        const current = lifecycle.openFailure;
        if (current === undefined || current !== failure || this.stopping || this.reportedUnhealthy) return;
        this.reportedUnhealthy = true;
        logger.error(
          { processor: name, partitions: this.failing().map((l) => l.partition), error: current.error, attempts: current.attempts, failingForMs: Date.now() - current.since },
          `task could not be opened for ${Math.round(timeoutMs / 1000)} s: the process is unhealthy (/healthz 503) until it opens`,
        );
      }, timeoutMs);
      timer.unref();
      failure = { since: Date.now(), attempts: 0, error: err.message, reason, timer };
    }
    failure.error = err.message;
    failure.reason = reason;
    lifecycle.failedBy(attempt, failure);
    if (reasonIsNew) logger.warn(fields, 'task could not be opened; retrying');
    else logger.debug(fields, 'task could not be opened; retrying');
    return ++failure.attempts;
  }

  /** Once no task keeps failing, a new run of failures gets its error line again. */
  private unhealthyReportEnds(): void {
    if (this.failing().length === 0) this.reportedUnhealthy = false;
  }

  /**
   * The partition's task once it is open, waiting (and heartbeating) through failed attempts to open
   * it, which task() retries. undefined when the batch went stale meanwhile (kafkajs seeks it again);
   * throws when the processor stops or the partition moves, so the batch is not marked processed.
   */
  private async taskWhenOpen(partition: number, heartbeat: () => Promise<void>, isStale: () => boolean): Promise<PartitionTask | undefined> {
    for (;;) {
      const lifecycle = this.lifecycle(partition);
      const attempt = lifecycle.task ?? (lifecycle.openFailure ? undefined : this.task(partition));
      if (attempt) {
        try {
          return await attempt;
        } catch {
          // (logged and retried by task())
        }
      }
      if (this.stopping || !this.assigned.has(partition)) throw new Error(`partition ${partition}: its task is not open and the processor is stopping or no longer owns it`);
      if (isStale()) return undefined;
      await sleep(500);
      await heartbeat();
    }
  }

  /** The open tasks of the partitions this instance owns (key stores restored), by partition. */
  async openTasks(): Promise<PartitionTask[]> {
    const open: PartitionTask[] = [];
    for (const lifecycle of [...this.lifecycles.values()].sort((a, b) => a.partition - b.partition)) {
      const task = lifecycle.state === 'ready' && this.assigned.has(lifecycle.partition) ? lifecycle.task : undefined;
      if (task) open.push(await task);
    }
    return open;
  }

  /** The task of a partition this instance owns, if it has been opened. */
  ownedTask(partition: number): Promise<PartitionTask> | undefined {
    return this.assigned.has(partition) ? this.lifecycles.get(partition)?.task : undefined;
  }

  private get transactional(): boolean {
    return this.options.transactional ?? true;
  }

  private async commit(task: PartitionTask, batch: Batch, { topicMessages, followUp }: BatchResult) {
    const next = String(Number(batch.lastOffset()) + 1);
    if (this.transactional) {
      return commitTransaction(task.producer!, {
        topicMessages,
        followUp,
        offsets: { consumerGroupId: this.options.groupId, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] },
        compression: this.options.compression,
      }, this.options.maxRequestBytes);
    }
    const toSend = topicMessages.filter((t) => t.messages.length > 0);
    if (toSend.length > 0) {
      this.plainProducer ??= (async () => {
        const producer = this.options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
        await producer.connect();
        return producer;
      })();
      this.plainProducer.catch(() => (this.plainProducer = undefined)); // the next batch tries again
      const producer = await this.plainProducer;
      for (const request of chunkMessages(toSend, this.options.maxRequestBytes)) await producer.sendBatch({ topicMessages: request, compression: this.options.compression });
    }
    await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
    return new Map<string, number>();
  }

  private async onBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    this.heartbeat = heartbeat;
    const task = await this.taskWhenOpen(batch.partition, heartbeat, isStale);
    if (!task) return;
    await task.exclusive(async () => {
      if (!isRunning() || isStale()) return;
      let result: BatchResult | undefined;
      try {
        const handlerStarted = process.hrtime.bigint();
        // (a handler that returns its result, not a promise, is not made to wait for a turn of the event loop)
        const handled = this.options.handler(batch, task, heartbeat);
        result = handled instanceof Promise ? await handled : handled;
        this.batchTimings.push({ ms: Number(process.hrtime.bigint() - handlerStarted) / 1e6, records: batch.messages.length });
        if (this.batchTimings.length > 10_000) this.batchTimings.splice(0, 5_000);
        const written = await this.commit(task, batch, result);
        if (this.options.commitMarkerBatches) this.committedNext.set(`${batch.topic}/${batch.partition}`, Number(batch.lastOffset()) + 1);
        await result.committed?.(written);
        const metrics = this.options.metrics;
        if (metrics) {
          metrics.batchRecords.observe({ topic: batch.topic }, batch.messages.length);
          metrics.batchSeconds.observe({ topic: batch.topic }, Number(process.hrtime.bigint() - handlerStarted) / 1e9);
          metrics.consumerLag.set({ topic: batch.topic, partition: String(batch.partition) }, Math.max(0, Number(batch.offsetLag())));
        }
      } catch (err) {
        result?.aborted?.();
        task.keys.rollback();
        if (err instanceof IntolerableRecordError) {
          // Stops for good: no further batch is fetched, and this one (not committed) is left as it was.
          this.consumer.pause(this.options.inputs.map((topic) => ({ topic })));
          this.options.logger.error({ processor: this.options.name, topic: batch.topic, partition: batch.partition, error: err.message }, 'record not tolerated');
          this.fail(err);
          return;
        }
        // A failed transaction may mean this task was fenced by a newer owner: reopen it from Kafka
        // before touching its partition again.
        this.lifecycles.get(batch.partition)?.aborted(task);
        void task.close(false);
        this.options.logger.warn({ processor: this.options.name, topic: batch.topic, partition: batch.partition, error: (err as Error).message }, 'batch aborted; it will be retried from the last committed offset');
        throw err;
      }
    });
  }

  /**
   * Commits the offset past a fetched batch of transaction markers (kafkajs hands no such batch to
   * eachBatch: see commitMarkerBatches), in a transaction of its task, unless a later batch of the
   * partition has committed past it meanwhile.
   */
  private async commitMarkers(topic: string, partition: number, lastOffset: number): Promise<void> {
    const task = await this.ownedTask(partition);
    if (!task || this.stopping) return;
    await task.exclusive(async () => {
      const key = `${topic}/${partition}`;
      const next = lastOffset + 1;
      if ((this.committedNext.get(key) ?? -1) >= next || this.stopping || !this.assigned.has(partition)) return;
      await commitTransaction(task.producer!, {
        topicMessages: [],
        offsets: { consumerGroupId: this.options.groupId, topics: [{ topic, partitions: [{ partition, offset: String(next) }] }] },
      });
      this.committedNext.set(key, next);
    });
  }

  /** Closes the tasks of partitions no longer owned, and opens (restores) those of owned ones. */
  private async applyAssignment(): Promise<void> {
    for (const [partition, lifecycle] of [...this.lifecycles]) {
      if (this.assigned.has(partition)) continue;
      this.lifecycles.delete(partition);
      const task = lifecycle.close();
      this.unhealthyReportEnds();
      this.options.metrics?.restoreProgress.remove({ partition: String(partition) });
      await task?.then((t) => t.close(true), () => {});
      await this.options.onRevoked?.(partition).catch(() => {});
      this.options.logger.info({ processor: this.options.name, partition }, 'partition revoked, its key store dropped');
    }
    // Restore every owned partition's keys now, not at its first record: readiness means restored.
    if (!this.stopping) for (const partition of this.assigned) this.task(partition).catch(() => {});
  }

  health(): Health {
    const consumer = this.consumerState;
    if (this.failure !== undefined) return { live: false, consumer, problem: this.failure };
    const now = Date.now();
    // (a stop closes every task, failing ones included: their failures no longer say anything)
    for (const { partition, openFailure: failure } of this.stopping ? [] : this.failing()) {
      const failingForMs = now - failure!.since;
      if (failingForMs >= this.taskOpenTimeoutMs) {
        return { live: false, consumer, problem: `partition ${partition}: its task could not be opened for ${Math.round(failingForMs / 1000)} s: ${failure!.error}` };
      }
    }
    return { live: consumer !== 'crashed' && consumer !== 'stopped', consumer };
  }

  readiness(): Readiness {
    const partitions = this.assignedPartitions.map((partition) => {
      const lifecycle = this.lifecycles.get(partition);
      const state = lifecycle?.state ?? 'restoring';
      const progress = lifecycle?.restoreProgress ?? 0;
      const failure = lifecycle?.openFailure;
      return failure ? { partition, state, progress, error: failure.error } : { partition, state, progress };
    });
    const ready = !this.stopping && this.joinedGroup && this.consumerState === 'running' && partitions.every((p) => p.state === 'ready');
    return { ready, joinedGroup: this.joinedGroup, stopping: this.stopping, partitions };
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // the keys reader first: a batch waiting for a restore or a key fails now instead of holding up
    // the consumer's disconnect (it is not committed, so it is read again after the restart)
    await this.reader.stop().catch(() => {});
    await this.consumer.disconnect().catch(() => {});
    for (const lifecycle of this.lifecycles.values()) await lifecycle.close()?.then((t) => t.close(false), () => {});
    await this.plainProducer?.then((p) => p.disconnect()).catch(() => {});
    await this.rebalancing;
    await this.endOffsets.close();
    await this.admin.disconnect().catch(() => {});
  }
}
