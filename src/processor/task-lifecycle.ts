// Where an owned partition's task is in its life, which `/readyz` reports partition by partition:
//
//   restoring ──opened──▶ ready ──batch aborted──▶ restoring   (reopened from Kafka: it may be fenced)
//       │                   ▲
//   failed to open       opened
//       ▼                   │
//    failing ──(retried with back-off)
//
//   any state ──revoked or stopped──▶ closed
//
// A task is ready once its key store is restored from the keys topic; a partition is never ready on
// the strength of its local store alone.
import type { TaskState } from '../observability/health.js';
import type { PartitionTask } from './partition-task.js';

export type { TaskState } from '../observability/health.js';

/** A partition whose task keeps failing to open. */
export interface OpenFailure {
  since: number;
  attempts: number;
  error: string;
  /** What tells this failure from another: the error's code, else its message. */
  reason: string;
  /** Fires once at the timeout: the one error line saying the process is now unhealthy. */
  timer: NodeJS.Timeout;
}

export class TaskLifecycle {
  private current: TaskState = 'restoring';
  /** The attempt to open the task under way, or the open task; undefined between attempts. */
  private attempt?: Promise<PartitionTask>;
  private opened?: PartitionTask;
  /** The fraction of the keys partition the latest restore has read (0 to 1). */
  restoreProgress = 0;
  /** Set from the first failed attempt until the task opens. */
  private failing?: OpenFailure;

  constructor(readonly partition: number) {}

  get state(): TaskState {
    return this.current;
  }

  get task(): Promise<PartitionTask> | undefined {
    return this.attempt;
  }

  get openFailure(): OpenFailure | undefined {
    return this.failing;
  }

  /** An attempt to open the task has begun (a failing task stays failing until one succeeds). */
  opening(attempt: Promise<PartitionTask>): void {
    this.expectNot('closed', 'opening');
    this.attempt = attempt;
    if (this.current !== 'failing') this.current = 'restoring';
  }

  /**
   * `attempt` opened its task: ready, unless the attempt is no longer this lifecycle's (closed
   * meanwhile). Returns the failure the task recovered from, if any.
   */
  openedBy(attempt: Promise<PartitionTask>, task: PartitionTask): OpenFailure | undefined {
    if (this.attempt !== attempt || this.current === 'closed') return undefined;
    this.current = 'ready';
    this.opened = task;
    return this.endFailure();
  }

  /**
   * `attempt` failed; `failure` is the run of failures it belongs to (new, or the one under way), or
   * undefined when the failure does not count (the processor stops, the partition is moving).
   */
  failedBy(attempt: Promise<PartitionTask>, failure: OpenFailure | undefined): void {
    if (this.attempt === attempt) this.attempt = undefined;
    if (this.current === 'closed' || failure === undefined) return;
    this.failing = failure;
    this.current = 'failing';
  }

  /**
   * A batch of `task` was aborted: the task is closed and the next batch reopens it from Kafka (a
   * failed transaction may mean a newer owner fenced it). Nothing changes if `task` is not the open one.
   */
  aborted(task: PartitionTask): void {
    if (this.opened !== task || this.current === 'closed') return;
    this.opened = undefined;
    this.attempt = undefined;
    this.current = 'restoring';
  }

  /** The partition moved or the processor stops: returns the task (or attempt) to close. */
  close(): Promise<PartitionTask> | undefined {
    const attempt = this.attempt;
    this.current = 'closed';
    this.attempt = undefined;
    this.opened = undefined;
    this.endFailure();
    return attempt;
  }

  private endFailure(): OpenFailure | undefined {
    const failure = this.failing;
    if (failure) clearTimeout(failure.timer);
    this.failing = undefined;
    return failure;
  }

  private expectNot(state: TaskState, transition: string): void {
    if (this.current === state) throw new Error(`partition ${this.partition}: its task cannot go ${transition} once ${state}`);
  }
}
