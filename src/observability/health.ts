// What a processor tells its probes (`/healthz`, `/readyz`: http-server.ts): kept here, not in the
// processor, so that the processor imports observability and never the other way round.

/** `/healthz`: the process is alive, its consumer is running, and no task has kept failing to open. */
export interface Health {
  live: boolean;
  consumer: 'starting' | 'running' | 'restarting' | 'crashed' | 'stopped';
  /** Why it is not live, when something other than the consumer's state says so. */
  problem?: string;
}

/**
 * Where a partition's task is in its life (processor/task-lifecycle.ts): restoring its key store, ready,
 * failing to open (retried), or closed (the processor is stopping).
 */
export type TaskState = 'restoring' | 'ready' | 'failing' | 'closed';

/** `/readyz`: partitions assigned and every one of their key stores restored, and no stop begun. */
export interface Readiness {
  ready: boolean;
  joinedGroup: boolean;
  /** A stop has begun: not ready from then on, so traffic and rollouts move on at once. */
  stopping: boolean;
  /** reencrypt: records of the source topics not yet re-encrypted (committed offsets to end offsets). */
  lag?: number;
  partitions: { partition: number; state: TaskState; progress: number; error?: string }[];
}

/** Before the processor exists: alive, not ready. */
export const STARTING_HEALTH: Health = { live: true, consumer: 'starting' };
export const NOT_READY: Readiness = { ready: false, joinedGroup: false, stopping: false, partitions: [] };
