// Where an owned partition's task is in its life, which `/readyz` reports partition by partition:
//
//   restoring ──opened──▶ ready ──batch failed (infrastructure)──▶ failing
//       │                   ▲                                          │
//       └──failed to open───┼──────────────────────────────────────▶ failing ──(retried with back-off)
//                           └──────────────── opened ◀─────────────────┘
//
//   any state ──revoked or stopped──▶ closed
//
// A task is ready once its key store is restored from the keys topic; a partition is never ready on
// the strength of its local store alone. While a task is not ready its partition is paused, so that
// the other partitions keep flowing (task-manager.ts). Every change is checked against TRANSITIONS.
import { FatalError } from '../errors/shredder-errors.js';
import type { TaskState } from '../observability/health.js';
import type { PartitionTask } from './partition-task.js';

export type { TaskState } from '../observability/health.js';

/** The legal changes of state; anything else is a bug, and throws. */
const TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  restoring: ['ready', 'failing', 'closed'],
  ready: ['failing', 'closed'],
  // (failing again: another attempt failed, or the reopened task's batch failed again)
  failing: ['failing', 'ready', 'closed'],
  closed: [],
};

export class IllegalTaskTransitionError extends FatalError {
  override readonly name: string = 'IllegalTaskTransitionError';
}

/**
 * A partition that cannot make progress: its task cannot be opened (`open`), or its batches keep
 * failing on an infrastructure fault (`batch`). It ends when the task opens (`open`) or a batch of the
 * partition commits (`batch`: an opened task alone does not show the fault is gone).
 */
export interface TaskFault {
  kind: 'open' | 'batch';
  since: number;
  attempts: number;
  error: string;
  /** What tells this fault from another: the error's code, else its message. */
  reason: string;
  /** Fires once at the bound: the one error line saying the process is now unhealthy. */
  timer: NodeJS.Timeout;
}

export class TaskLifecycle {
  private current: TaskState = 'restoring';
  /** The attempt to open the task under way, or the one that opened it; undefined between attempts. */
  private attempt?: Promise<PartitionTask>;
  private opened?: PartitionTask;
  /** The fraction of the keys partition the latest restore has read (0 to 1). */
  restoreProgress = 0;
  private ongoingFault?: TaskFault;

  constructor(readonly partition: number) {}

  get state(): TaskState {
    return this.current;
  }

  get task(): Promise<PartitionTask> | undefined {
    return this.attempt;
  }

  /** The task, once ready. */
  get readyTask(): PartitionTask | undefined {
    return this.current === 'ready' ? this.opened : undefined;
  }

  get fault(): TaskFault | undefined {
    return this.ongoingFault;
  }

  /** An attempt to open the task has begun (a failing task stays failing until one succeeds). */
  opening(attempt: Promise<PartitionTask>): void {
    if (this.current === 'closed' || this.current === 'ready') throw new IllegalTaskTransitionError(`partition ${this.partition}: its task cannot be opened again once ${this.current}`);
    this.attempt = attempt;
  }

  /**
   * `attempt` opened its task: ready, unless the attempt is no longer this lifecycle's (closed
   * meanwhile: whoever closed it closes the task). Returns whether it is ready, and the fault it ended.
   */
  openedBy(attempt: Promise<PartitionTask>, task: PartitionTask): { ready: boolean; ended?: TaskFault } {
    if (this.attempt !== attempt || this.current === 'closed') return { ready: false };
    this.moveTo('ready');
    this.opened = task;
    return { ready: true, ended: this.ongoingFault?.kind === 'open' ? this.endFault() : undefined };
  }

  /**
   * `attempt` failed; `fault` is the run of faults it belongs to (new, or the one under way), or
   * undefined when the failure does not count (the processor stops, the partition is moving).
   */
  openFailedBy(attempt: Promise<PartitionTask>, fault: TaskFault | undefined): void {
    if (this.attempt === attempt) this.attempt = undefined;
    if (this.current === 'closed' || fault === undefined) return;
    this.moveTo('failing');
    this.ongoingFault = fault;
  }

  /**
   * A batch of `task` failed on an infrastructure fault: the task is to be closed and opened again
   * from Kafka after a back-off (a failed transaction may mean a newer owner fenced it). Returns false,
   * changing nothing, when `task` is not the open one.
   */
  batchFailedOn(task: PartitionTask, fault: TaskFault): boolean {
    if (this.opened !== task || this.current !== 'ready') return false;
    this.moveTo('failing');
    this.opened = undefined;
    this.attempt = undefined;
    this.ongoingFault = fault;
    return true;
  }

  /** A batch committed: the partition makes progress again. Returns the fault that ended, if any. */
  batchCommitted(): TaskFault | undefined {
    return this.ongoingFault && this.endFault();
  }

  /** The partition moved or the processor stops: returns the task (or attempt) to close. */
  close(): Promise<PartitionTask> | undefined {
    const attempt = this.attempt;
    if (this.current !== 'closed') this.moveTo('closed');
    this.attempt = undefined;
    this.opened = undefined;
    this.endFault();
    return attempt;
  }

  private moveTo(next: TaskState): void {
    if (!TRANSITIONS[this.current].includes(next)) {
      throw new IllegalTaskTransitionError(`partition ${this.partition}: its task cannot go from ${this.current} to ${next}`);
    }
    this.current = next;
  }

  private endFault(): TaskFault | undefined {
    const fault = this.ongoingFault;
    if (fault) clearTimeout(fault.timer);
    this.ongoingFault = undefined;
    return fault;
  }
}
