// The tasks of the partitions this instance owns: opening them (restoring their keys) as the group
// assigns partitions, closing them when partitions move, retrying with back-off a task that cannot
// open or whose batch failed on an infrastructure fault, and what the probes say of them. A partition
// whose task is not ready is paused, and resumed once its task opens, so that one partition that
// cannot make progress (a key store that cannot open, an HSM that is down) never holds up the others.
import { closeAll } from '../errors/close-all.js';
import { faultSourceOf, messageOf } from '../errors/shredder-errors.js';
import type { Logger } from '../observability/logger.js';
import type { ProcessorMetrics } from '../observability/metrics.js';
import type { Readiness } from '../observability/health.js';
import type { PartitionTask, RestoreStats } from './partition-task.js';
import { TaskLifecycle, type TaskFault } from './task-lifecycle.js';

/** Default bound of a fault (SHREDDER_TASK_OPEN_TIMEOUT_MS): past it, /healthz answers 503. */
export const TASK_OPEN_TIMEOUT_MS = 60_000;
/**
 * Retries back off from the first to the last delay: a task that cannot open (a full disk, a missing
 * ACL) from 2 to 30 s; a batch that failed on an infrastructure fault (an HSM that is down) from 1 to
 * 5 s, so that the partition goes on within 5 s of the fault's end (a retry costs a task's reopening:
 * a transactional producer's initialisation and a restore from the checkpoint).
 */
const RETRY_DELAYS = { open: { first: 2000, max: 30_000 }, batch: { first: 1000, max: 5000 } } as const;

export interface TaskManagerOptions {
  /** The processor's name, for logs. */
  name: string;
  logger: Logger;
  metrics?: ProcessorMetrics;
  /** How long a partition may fail to make progress before the process reports itself unhealthy. */
  faultBoundMs: number;
  /** Opens a partition's task, reporting the restore's progress (0 to 1). */
  openTask(partition: number, onRestoreProgress: (fraction: number) => void): Promise<PartitionTask>;
  /** Stops fetching the partition of every input topic; resume() starts it again. Both idempotent. */
  pause(partition: number): void;
  resume(partition: number): void;
  /** After a partition's task was closed because the partition moved to another instance. */
  onRevoked?: (partition: number) => Promise<void>;
}

export class TaskManager {
  /** Each partition's task and where it is in its life, from its first batch or assignment until it is revoked. */
  private readonly lifecycles = new Map<number, TaskLifecycle>();
  private assigned = new Set<number>();
  private stopping = false;
  private rebalancing: Promise<void> = Promise.resolve();
  /** The error line at the bound was written for the current run of faults. */
  private reportedUnhealthy = false;
  readonly restores: RestoreStats[] = [];

  constructor(private readonly options: TaskManagerOptions) {}

  /** Partitions this instance owns after the last rebalance. */
  get assignedPartitions(): number[] {
    return [...this.assigned].sort((a, b) => a - b);
  }

  owns(partition: number): boolean {
    return this.assigned.has(partition);
  }

  /** A new assignment: tasks of partitions no longer owned close, those of owned ones open (one rebalance at a time). */
  assign(owned: Set<number>): Promise<void> {
    this.assigned = owned;
    // (each applies the latest assignment: a quicker later one makes an earlier one's work moot)
    this.rebalancing = this.rebalancing.then(() => this.applyAssignment());
    return this.rebalancing;
  }

  /**
   * The partition's task if it is ready; otherwise undefined, the partition is paused, and an attempt
   * to open the task is under way or scheduled (it resumes the partition once it opens).
   */
  readyTask(partition: number): PartitionTask | undefined {
    const lifecycle = this.lifecycle(partition);
    const task = lifecycle.readyTask;
    if (task) return task;
    this.options.pause(partition);
    // (a failing task is retried by its timer, not by the batches that meet it)
    this.openIfIdle(lifecycle);
    return undefined;
  }

  /** The open tasks of the partitions this instance owns (key stores restored), by partition. */
  async openTasks(): Promise<PartitionTask[]> {
    const open: PartitionTask[] = [];
    for (const lifecycle of [...this.lifecycles.values()].sort((a, b) => a.partition - b.partition)) {
      const task = this.assigned.has(lifecycle.partition) ? lifecycle.readyTask : undefined;
      if (task) open.push(task);
    }
    return open;
  }

  /** The task (or the attempt to open it) of a partition this instance owns. */
  ownedTask(partition: number): Promise<PartitionTask> | undefined {
    return this.assigned.has(partition) ? this.lifecycles.get(partition)?.task : undefined;
  }

  /**
   * A batch of `task` failed on anything but a record's own fault. The partition is paused, the task
   * closed, and opened again after a back-off, which resumes it. `committed`: the failure came after
   * the batch's transaction committed (storing its keys locally): the fault ends once the task has
   * reopened (restoring them from the keys topic), not at the next batch, which may never come.
   */
  batchFailed(partition: number, task: PartitionTask, error: unknown, committed = false): void {
    this.options.pause(partition);
    const lifecycle = this.lifecycles.get(partition);
    if (!lifecycle || lifecycle.readyTask !== task) return; // (closed or replaced meanwhile: its closer closes it)
    const fault = this.faultOf(lifecycle, committed ? 'open' : 'batch', error);
    lifecycle.batchFailedOn(task, fault);
    // (not awaited: close() waits for the task's work in progress, which is the batch that failed)
    task.close(false).catch((err: unknown) => this.options.logger.warn({ processor: this.options.name, partition, error: messageOf(err) }, 'closing the task after a failed batch failed'));
    this.retryLater(lifecycle, fault);
  }

  /** A batch of the partition committed: a fault of its batches is over. */
  batchCommitted(partition: number): void {
    const lifecycle = this.lifecycles.get(partition);
    if (lifecycle?.fault === undefined) return;
    const ended = lifecycle.batchCommitted();
    if (ended) this.recovered(lifecycle, ended);
  }

  /** Why the process is unhealthy, if a partition has failed to make progress for longer than the bound. */
  problem(): string | undefined {
    if (this.stopping) return undefined; // (a stop closes every task, failing ones included)
    const now = Date.now();
    for (const { partition, fault } of this.faulting()) {
      const failingForMs = now - fault!.since;
      if (failingForMs < this.options.faultBoundMs) continue;
      const what = fault!.kind === 'open' ? 'its task could not be opened' : 'its batches keep failing (nothing committed, retried)';
      return `partition ${partition}: ${what} for ${Math.round(failingForMs / 1000)} s: ${fault!.error}`;
    }
    return undefined;
  }

  /** Each owned partition's state for /readyz. */
  partitions(): Readiness['partitions'] {
    return this.assignedPartitions.map((partition) => {
      const lifecycle = this.lifecycles.get(partition);
      const state = lifecycle?.state ?? 'restoring';
      const progress = lifecycle?.restoreProgress ?? 0;
      const fault = lifecycle?.fault;
      return fault ? { partition, state, progress, error: fault.error } : { partition, state, progress };
    });
  }

  /** Closes every task, going on after a failure; rethrows the first. */
  async close(): Promise<void> {
    this.stopping = true;
    await this.rebalancing;
    await closeAll([...this.lifecycles.values()].map((lifecycle) => async () => {
      const task = await lifecycle.close()?.catch(() => undefined); // (an attempt that failed left nothing open)
      await task?.close(false);
    }));
  }

  private lifecycle(partition: number): TaskLifecycle {
    let lifecycle = this.lifecycles.get(partition);
    if (!lifecycle) this.lifecycles.set(partition, (lifecycle = new TaskLifecycle(partition)));
    return lifecycle;
  }

  /** Opens a task no attempt has been made for yet (a failing one is retried by its timer). */
  private openIfIdle(lifecycle: TaskLifecycle): void {
    if (lifecycle.state === 'restoring' && !lifecycle.task && !this.stopping) this.open(lifecycle);
  }

  /** Once no partition has a fault, a new run of faults gets its error line again. */
  private faultsMayHaveEnded(): void {
    if (this.faulting().length === 0) this.reportedUnhealthy = false;
  }

  private open(lifecycle: TaskLifecycle): void {
    const { partition } = lifecycle;
    const { metrics } = this.options;
    const attempt = this.options.openTask(partition, (fraction) => {
      lifecycle.restoreProgress = fraction;
      metrics?.restoreProgress.set({ partition: String(partition) }, fraction);
    });
    lifecycle.opening(attempt);
    attempt.then(
      (task) => {
        const { ready, ended } = lifecycle.openedBy(attempt, task);
        if (!ready) return;
        this.restores.push(task.restoreStats);
        metrics?.restoredRecords.inc({ partition: String(partition) }, task.restoreStats.records);
        if (ended) this.recovered(lifecycle, ended);
        this.options.resume(partition);
      },
      (err: unknown) => {
        if (this.stopping || lifecycle.state === 'closed' || !this.assigned.has(partition)) return lifecycle.openFailedBy(attempt, undefined);
        const fault = this.faultOf(lifecycle, 'open', err);
        lifecycle.openFailedBy(attempt, fault);
        this.retryLater(lifecycle, fault);
      },
    );
  }

  /** Opens the task again after the back-off of the fault's latest failure, if it is still wanted then. */
  private retryLater(lifecycle: TaskLifecycle, { kind, attempts }: TaskFault): void {
    const { first, max } = RETRY_DELAYS[kind];
    const delay = Math.min(max, first * 2 ** (attempts - 1));
    setTimeout(() => {
      const { partition } = lifecycle;
      if (this.stopping || this.lifecycles.get(partition) !== lifecycle || lifecycle.state !== 'failing' || !this.assigned.has(partition) || lifecycle.task) return;
      this.open(lifecycle);
    }, delay).unref();
  }

  /** The lifecycles with a fault, by partition. */
  private faulting(): TaskLifecycle[] {
    return [...this.lifecycles.values()].filter((l) => l.fault !== undefined).sort((a, b) => a.partition - b.partition);
  }

  /**
   * The partition's fault, begun or gone on with: a reason is logged once as a warning (other
   * partitions failing the same way, and the retries, at debug level), and one error line says when
   * the fault has lasted the bound: from then on /healthz says the process is unhealthy, until every
   * partition makes progress again.
   */
  private faultOf(lifecycle: TaskLifecycle, kind: TaskFault['kind'], error: unknown): TaskFault {
    const { logger, name, faultBoundMs } = this.options;
    const { partition } = lifecycle;
    const message = messageOf(error);
    // (the same failure on other partitions differs only by the partition's store path: compared by its code)
    const reason = (error as NodeJS.ErrnoException | undefined)?.code ?? message;
    const reasonIsNew = !this.faulting().some((l) => l.fault!.reason === reason);
    let fault = lifecycle.fault;
    if (!fault) {
      const timer = setTimeout(() => {
        const current = lifecycle.fault;
        if (current === undefined || current !== fault || this.stopping || this.reportedUnhealthy) return;
        this.reportedUnhealthy = true;
        logger.error(
          { processor: name, partitions: this.faulting().map((l) => l.partition), error: current.error, attempts: current.attempts, failingForMs: Date.now() - current.since },
          current.kind === 'open'
            ? `task could not be opened for ${Math.round(faultBoundMs / 1000)} s: the process is unhealthy (/healthz 503) until it opens`
            : `batches kept failing for ${Math.round(faultBoundMs / 1000)} s: the process is unhealthy (/healthz 503) until one commits`,
        );
      }, faultBoundMs);
      timer.unref();
      fault = { kind, since: Date.now(), attempts: 0, error: message, reason, timer };
    }
    fault.kind = kind;
    fault.error = message;
    fault.reason = reason;
    fault.attempts++;
    this.options.metrics?.partitionFaults.inc({ partition: String(partition), kind, source: faultSourceOf(error) });
    const fields = { processor: name, partition, error: message, source: faultSourceOf(error) };
    const line = kind === 'open' ? 'task could not be opened; retrying' : 'batch aborted on an infrastructure fault: nothing of it committed; retrying after a back-off';
    if (reasonIsNew) logger.warn(fields, line);
    else logger.debug(fields, line);
    return fault;
  }

  private recovered(lifecycle: TaskLifecycle, ended: TaskFault): void {
    this.faultsMayHaveEnded();
    this.options.logger.info({ processor: this.options.name, partition: lifecycle.partition, attempts: ended.attempts, failedForMs: Date.now() - ended.since }, ended.kind === 'open' ? 'task opened after failed attempts' : 'partition makes progress again after an infrastructure fault');
  }

  /** Closes the tasks of partitions no longer owned, and opens (restores) those of owned ones. */
  private async applyAssignment(): Promise<void> {
    const { logger, name, metrics, onRevoked } = this.options;
    for (const [partition, lifecycle] of [...this.lifecycles]) {
      if (this.assigned.has(partition)) continue;
      this.lifecycles.delete(partition);
      const attempt = lifecycle.close();
      this.faultsMayHaveEnded();
      metrics?.restoreProgress.remove({ partition: String(partition) });
      this.options.resume(partition); // (a pause of ours must not outlive the ownership)
      const task = await attempt?.catch(() => undefined); // (an attempt that failed left nothing open)
      await task?.close(true).catch((err: unknown) => logger.warn({ processor: name, partition, error: messageOf(err) }, 'closing a revoked partition\'s task failed'));
      await onRevoked?.(partition).catch((err: unknown) => logger.warn({ processor: name, partition, error: messageOf(err) }, 'cleaning up after a revoked partition failed'));
      logger.info({ processor: name, partition }, 'partition revoked, its key store dropped');
    }
    // Restore every owned partition's keys now, not at its first record: readiness means restored.
    for (const partition of this.assigned) this.openIfIdle(this.lifecycle(partition));
  }
}
