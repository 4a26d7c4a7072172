// Prometheus metrics of one processor (prom-client, its own registry so several processors can live in
// one process, as in tests). Labels never carry a subject: only routes, topics and partitions. The
// process metrics keep Prometheus' standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes,
// ...), so the dashboards and alerts written for any other process work as they are.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { VERSION } from '../version.js';

/**
 * Buckets of shredder_crypto_seconds_per_record: a 1-2-5 series from a tenth of a microsecond (small
 * records in the WebAssembly core) to 10 ms (records of megabytes), so that a change of either
 * algorithm's cost moves observations across a bucket (what each costs: docs/performance.md).
 */
export const CRYPTO_SECONDS_BUCKETS = [1e-7, 2e-7, 5e-7, 1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3, 1e-2];

export class ProcessorMetrics {
  readonly registry = new Registry();
  readonly recordsIn: Counter<'route'>;
  readonly recordsOut: Counter<'route'>;
  readonly deadLettered: Counter<'route'>;
  readonly deadLettersTruncated: Counter<'route'>;
  readonly shredded: Counter<'route'>;
  readonly keysCreated: Counter;
  readonly subjectsForgotten: Counter;
  readonly forgetRequests: Counter<'route'>;
  readonly keysRewrapped: Counter<'partition'>;
  readonly partitionFaults: Counter<'partition' | 'kind' | 'source'>;
  readonly keysByMasterKey: Gauge<'partition' | 'master_key_id'>;
  readonly restoreProgress: Gauge<'partition'>;
  readonly restoredRecords: Counter<'partition'>;
  readonly keysTopicInvalidValues: Counter<'topic' | 'partition' | 'reason'>;
  readonly consumerLag: Gauge<'topic' | 'partition'>;
  readonly erasurePendingSince: Gauge<'partition'>;
  readonly erasureDeadline: Gauge;
  readonly batchRecords: Histogram<'topic'>;
  readonly batchSeconds: Histogram<'topic'>;
  readonly cryptoSecondsPerRecord: Histogram<'topic'>;

  /** `processor`: `encrypt`, `decrypt` or `decrypting-consumer`, a label on every series. */
  constructor(processor: string, { processMetrics = true } = {}) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ processor });
    if (processMetrics) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'shredder_build_info',
      help: 'Always 1; its labels name the build: kafka-shredder version and Node.js version',
      labelNames: ['version', 'nodejs_version'],
      registers,
    }).set({ version: VERSION, nodejs_version: process.version }, 1);
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) => new Counter<L>({ name, help, labelNames, registers });
    this.recordsIn = counter('shredder_records_in_total', 'Records read from the route input topics and committed', ['route']);
    this.recordsOut = counter('shredder_records_out_total', 'Records written to the route output topics', ['route']);
    this.deadLettered = counter('shredder_records_dead_lettered_total', 'Records sent to the dead letter topic', ['route']);
    this.deadLettersTruncated = counter(
      'shredder_dead_letters_truncated_total',
      'Dead letters too large for the dead letter topic, written without their value (header shredder.error.value-dropped)',
      ['route'],
    );
    this.shredded = counter('shredder_records_shredded_total', 'Records whose subject was forgotten (decrypt)', ['route']);
    this.keysCreated = counter('shredder_keys_created_total', 'Data keys created for subjects (encrypt)', []);
    this.subjectsForgotten = counter(
      'shredder_subjects_forgotten_total',
      'Subjects whose live key a forget destroyed (encrypt): once per subject, however many routes carry its forget request',
      [],
    );
    this.forgetRequests = counter('shredder_forget_requests_total', 'Forget requests carried out (encrypt) or forget markers forwarded (decrypt), per route', ['route']);
    this.partitionFaults = counter(
      'shredder_partition_faults_total',
      'Infrastructure faults that stopped a partition: a task that could not open (kind="open") or a batch aborted and retried (kind="batch"), by source (master-key, rocksdb, kafka, processor); never a record\'s fault',
      ['partition', 'kind', 'source'],
    );
    this.keysRewrapped = counter('shredder_keys_rewrapped_total', 'Keys re-wrapped under the current master key after a rotation (encrypt)', ['partition']);
    this.keysByMasterKey = new Gauge({
      name: 'shredder_keys_by_master_key',
      help: 'Live keys of a keys partition that each master key id wraps, as of the last pass over its store (encrypt)',
      labelNames: ['partition', 'master_key_id'],
      registers,
    });
    this.restoreProgress = new Gauge({
      name: 'shredder_keys_restore_progress',
      help: 'Restore of a keys-topic partition into its store, from 0 to 1 (1: restored)',
      labelNames: ['partition'],
      registers,
    });
    this.restoredRecords = counter('shredder_keys_restored_records_total', 'Keys-topic records applied to the stores by restores', ['partition']);
    // (reason is one of a fixed few, so the series stay bounded; topic: reencrypt reads two keys topics)
    this.keysTopicInvalidValues = counter(
      'shredder_keys_topic_invalid_values_total',
      'Keys-topic records read that this build cannot read, by reason: length, version or algorithm (the value is kept, opaque: its subject has no usable key), key (a value under no subject: skipped)',
      ['topic', 'partition', 'reason'],
    );
    this.consumerLag = new Gauge({
      name: 'shredder_consumer_lag',
      help: 'Records between the last batch processed and the partition end (high watermark)',
      labelNames: ['topic', 'partition'],
      registers,
    });
    // (the erasure-overdue alert: time() minus the first, past the second; deploy/prometheus/kafka-shredder-rules.yml)
    this.erasurePendingSince = new Gauge({
      name: 'shredder_erasure_pending_since_timestamp_seconds',
      help: 'Unix time of the oldest forget (or re-wrap) on a keys partition whose segment-roll marker is not written yet, so that compaction cannot erase the old keys (encrypt, reencrypt); no series when none is pending',
      labelNames: ['partition'],
      registers,
    });
    this.erasureDeadline = new Gauge({
      name: 'shredder_erasure_deadline_seconds',
      help: 'SHREDDER_ERASURE_DEADLINE_MS in seconds: how long after a forget the old wrapped key may stay in the keys topic (encrypt, reencrypt)',
      registers,
    });
    this.batchRecords = new Histogram({
      name: 'shredder_batch_records',
      help: 'Records per input batch',
      labelNames: ['topic'],
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
      registers,
    });
    this.batchSeconds = new Histogram({
      name: 'shredder_batch_seconds',
      help: 'Time to process and commit one input batch (its transaction included)',
      labelNames: ['topic'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.cryptoSecondsPerRecord = new Histogram({
      name: 'shredder_crypto_seconds_per_record',
      help: 'Time in the batch cipher per record sealed or opened (one observation per batch)',
      labelNames: ['topic'],
      buckets: CRYPTO_SECONDS_BUCKETS,
      registers,
    });
  }

  /** Counts one committed input batch of a route (`topic` is its input topic). */
  countBatch(
    route: string,
    topic: string,
    counts: {
      in: number;
      out: number;
      deadLettered: number;
      /** Of those, written without their value: too large for the dead letter topic. */
      deadLettersTruncated?: number;
      shredded?: number;
      keysCreated?: number;
      /** Forget requests (encrypt) or markers (decrypt) in the batch. */
      forgetRequests?: number;
      /** Live keys those forgets destroyed (encrypt). */
      subjectsForgotten?: number;
      cryptoNs: number;
      cryptoRecords: number;
    },
  ): void {
    const labels = { route };
    this.recordsIn.inc(labels, counts.in);
    this.recordsOut.inc(labels, counts.out);
    this.deadLettered.inc(labels, counts.deadLettered);
    if (counts.deadLettersTruncated !== undefined) this.deadLettersTruncated.inc(labels, counts.deadLettersTruncated);
    if (counts.shredded !== undefined) this.shredded.inc(labels, counts.shredded);
    if (counts.keysCreated !== undefined) this.keysCreated.inc(counts.keysCreated);
    if (counts.forgetRequests !== undefined) this.forgetRequests.inc(labels, counts.forgetRequests);
    if (counts.subjectsForgotten !== undefined) this.subjectsForgotten.inc(counts.subjectsForgotten);
    // one observation per batch: the cipher's time divided by the records (or fields) it sealed or opened
    if (counts.cryptoRecords > 0) this.cryptoSecondsPerRecord.observe({ topic }, counts.cryptoNs / 1e9 / counts.cryptoRecords);
  }

  /** Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
