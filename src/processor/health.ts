// What a processor tells its probes (`/healthz`, `/readyz`: observability/http-server.ts): kept apart
// from the processor so that observability and the processor do not import each other.

/** `/healthz`: the process is alive, its consumer is running, and no task has kept failing to open. */
export interface Health {
  live: boolean;
  consumer: 'starting' | 'running' | 'restarting' | 'crashed' | 'stopped';
  /** Why it is not live, when something other than the consumer's state says so. */
  problem?: string;
}

/** `/readyz`: partitions assigned and every one of their key stores restored, and no stop begun. */
export interface Readiness {
  ready: boolean;
  joinedGroup: boolean;
  /** A stop has begun: not ready from then on, so traffic and rollouts move on at once. */
  stopping: boolean;
  /** reencrypt: records of the source topics not yet re-encrypted (committed offsets to end offsets). */
  lag?: number;
  partitions: { partition: number; state: 'restoring' | 'ready' | 'failing'; progress: number; error?: string }[];
}

/** Before the processor exists: alive, not ready. */
export const STARTING_HEALTH: Health = { live: true, consumer: 'starting' };
export const NOT_READY: Readiness = { ready: false, joinedGroup: false, stopping: false, partitions: [] };
