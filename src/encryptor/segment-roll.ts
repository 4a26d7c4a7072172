// Kafka rolls a log segment only when a record is appended after segment.ms, and never compacts the
// active segment. A forget's tombstone on a keys partition that then receives nothing would keep the
// forgotten subject's wrapped key readable past the erasure deadline. So after a forget, if the
// partition has not been written to once segment.ms has passed, we append a roll marker: a tombstone
// with the empty key (no subject has the empty key: such records are dead-lettered), which rolls the
// segment so the cleaner can erase the old key within max.compaction.lag.ms.
import { commitTransaction } from '../kafka/transactions.js';
import { keysTopicConfig } from '../kafka/topics.js';
import type { Logger } from '../observability/logger.js';
import type { ProcessorMetrics } from '../observability/metrics.js';
import type { StreamProcessor } from '../processor/stream-processor.js';

export const ROLL_MARKER_KEY = Buffer.alloc(0);

export class SegmentRoller {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  /** Per partition, when its oldest tombstone not yet followed by a marker was written (ms). */
  private readonly pendingSince = new Map<number, number>();

  constructor(
    private readonly segmentMs: number,
    private readonly appendMarker: (partition: number) => Promise<void>,
    private readonly logger: Logger,
    /** Told when a partition's oldest pending forget changes (`undefined`: none pending). */
    private readonly onPending?: (partition: number, sinceMs: number | undefined) => void,
  ) {}

  /**
   * A tombstone was written to `partition`: make sure its segment rolls once segment.ms has passed.
   * The wait restarts with each forget: the segment holding the last tombstone started no later than
   * it, so an append segment.ms after the last tombstone rolls every segment holding one.
   */
  forgotten(partition: number): void {
    const pending = this.timers.get(partition);
    if (pending) clearTimeout(pending);
    if (!this.pendingSince.has(partition)) {
      const now = Date.now();
      this.pendingSince.set(partition, now);
      this.onPending?.(partition, now);
    }
    const timer = setTimeout(() => {
      this.timers.delete(partition);
      this.appendMarker(partition).then(
        () => {
          // (a forget since has its own timer: still pending, counted from the older one, conservatively)
          if (this.timers.has(partition)) return;
          this.pendingSince.delete(partition);
          this.onPending?.(partition, undefined);
        },
        // (it stays pending, so the erasure-overdue alert shows it, until a later forget's marker is written)
        (err: Error) => this.logger.warn({ partition, error: err.message }, 'could not append the keys segment-roll marker'),
      );
    }, this.segmentMs + 1000);
    timer.unref();
    this.timers.set(partition, timer);
  }

  stop(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

/**
 * The roller of a processor that writes tombstones to `keysTopic` (the encryptor, reencrypt): it
 * appends each marker in a transaction of the partition's task, if this instance still owns it.
 */
export function keysSegmentRoller(
  processor: () => StreamProcessor | undefined,
  keysTopic: string,
  erasureDeadlineMs: number,
  logger: Logger,
  metrics?: ProcessorMetrics,
): SegmentRoller {
  const appendMarker = async (partition: number) => {
    const task = await processor()?.ownedTask(partition);
    if (!task?.producer) return; // the partition moved: its new owner writes to it
    await task.exclusive(() =>
      commitTransaction(task.producer!, { topicMessages: [{ topic: keysTopic, messages: [{ key: ROLL_MARKER_KEY, value: null, partition }] }] }),
    );
    logger.debug({ partition }, 'keys segment-roll marker appended');
  };
  metrics?.erasureDeadline.set(erasureDeadlineMs / 1000);
  const onPending = (partition: number, sinceMs: number | undefined) => {
    if (sinceMs === undefined) metrics?.erasurePendingSince.remove({ partition: String(partition) });
    else metrics?.erasurePendingSince.set({ partition: String(partition) }, sinceMs / 1000);
  };
  return new SegmentRoller(Number(keysTopicConfig(erasureDeadlineMs)['segment.ms']), appendMarker, logger, onPending);
}
