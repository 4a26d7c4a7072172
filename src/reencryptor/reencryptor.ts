// `kafka-shredder reencrypt`: migrates an encrypted log to a new keyspace (a new keys topic, new data
// keys, SHREDDER_ALGORITHM, the current master key): for each route old->new it reads the old
// encrypted topic, opens each record with the old keys (SHREDDER_SOURCE_KEYS_TOPIC) and seals it
// again under its subject's key in the new keys topic (SHREDDER_KEYS_TOPIC), in memory only, in one
// transaction per batch with the new keys and the input offsets, as the encryptor does. It follows
// the old topic continuously, so forgets issued during a migration reach the new keyspace.
// - Records keep key, partition, order, timestamp and headers; tombstones stay tombstones.
// - A forget marker forgets its subject in the new keyspace too (a tombstone there, with its erasure
//   audit entry and, as in the encryptor, a segment roll so compaction erases the key within the
//   erasure deadline) and is carried over.
// - A record already shredded (its key destroyed in the old keyspace) is copied as it is: no key of the
//   new keyspace opens it, so it stays unreadable; nothing is ever resurrected.
// - A record that cannot be opened goes to the dead letter topic as it was read (encrypted): no
//   plaintext ever reaches Kafka.
import type { Batch, KafkaMessage, Message } from 'kafkajs';
import { loadAeadRegistry, type AeadRegistry } from '../crypto/index.js';
import { messageOf } from '../errors/shredder-errors.js';
import { decryptBatch } from '../decryptor/decrypt-batch.js';
import { encryptBatch } from '../encryptor/encrypt-batch.js';
import { ErasureAudit } from '../encryptor/erasure-audit.js';
import { keyRecordMessage, outputKey, outputRecord } from '../encryptor/output-records.js';
import { keysSegmentRoller, type SegmentRoller } from '../encryptor/segment-roll.js';
import { deadLetter } from '../kafka/dead-letter.js';
import type { TopicRoles } from '../kafka/topics.js';
import type { PartitionTask } from '../processor/partition-task.js';
import { enforceErrorsTolerance } from '../processor/errors-tolerance.js';
import { RouteProcessor } from '../processor/route-processor.js';
import type { Readiness } from '../observability/health.js';
import { StreamProcessor, type BatchResult } from '../processor/stream-processor.js';
import { SourceKeyspace } from './source-keyspace.js';

export interface ReencryptorStats {
  recordsIn: number;
  recordsOut: number;
  /** Sealed again under the new keyspace. */
  reencrypted: number;
  /** Copied as they were: already shredded in the old keyspace. */
  shredded: number;
  forgets: number;
  deadLettered: number;
  keysCreated: number;
}

/** How often the migration's lag (committed offsets to end offsets of the old topics) is measured. */
const LAG_INTERVAL_MS = 2000;

export class Reencryptor extends RouteProcessor {
  readonly stats: ReencryptorStats = { recordsIn: 0, recordsOut: 0, reencrypted: 0, shredded: 0, forgets: 0, deadLettered: 0, keysCreated: 0 };
  private source?: SourceKeyspace;
  private audit?: ErasureAudit;
  private roller?: SegmentRoller;
  private lagTimer?: NodeJS.Timeout;
  /** Records of the old topics not yet re-encrypted, as last measured; undefined before the first measure. */
  private lag?: number;

  async start(): Promise<void> {
    const { config } = this;
    const sourceKeysTopic = config.sourceKeysTopic!;
    const roles: TopicRoles = {
      inputs: config.routes.map((r) => r.from),
      outputs: config.routes.map((r) => r.to),
      plaintext: [],
      encrypted: config.routes.flatMap((r) => [r.from, r.to]),
      sourceKeys: sourceKeysTopic,
      audit: config.auditTopic,
    };
    await this.prepareKeys();
    const layout = await this.prepareTopics(roles);
    this.audit = await this.whenKeysAvailable('deriving the audit key', () => ErasureAudit.of(config, this.keys.keyring, this.subjectRef));
    this.roller = keysSegmentRoller(() => this.processor, config.keysTopic, config.erasureDeadlineMs, this.logger, this.metrics);
    const ciphers = await loadAeadRegistry();
    this.source = new SourceKeyspace({
      kafka: this.kafka,
      keysTopic: sourceKeysTopic,
      groupId: config.groupId,
      stateDir: config.stateDir,
      keyring: this.keys.keyring,
      checkpointMaxAgeMs: layout.keysTombstoneRetentionMs,
      retiredPseudonymMs: config.erasureDeadlineMs,
      logger: this.logger,
      metrics: this.metrics,
      subjectRef: this.subjectRef,
    });
    await this.source.start();
    this.processor = new StreamProcessor({
      ...this.commonOptions(layout),
      name: 'reencrypt',
      commitMarkerBatches: true,
      onRevoked: (partition) => this.source!.revoke(partition),
      handler: (batch, task, heartbeat) => this.reencrypt(batch, task, heartbeat, ciphers, layout.outputsMaxMessageBytes.get(this.routes.get(batch.topic)!)!),
    });
    this.source.failed.catch((err: Error) => this.logger.error({ error: err.message }, 'the source keys topic reader failed'));
    await this.processor.start();
    this.measureLag();
    this.logger.info({ routes: config.routes, sourceKeysTopic, keysTopic: config.keysTopic, algorithm: config.algorithm, masterKeyId: this.keys.keyring.currentId }, 'reencryptor started');
  }

  /** Measures the lag every LAG_INTERVAL_MS: what /readyz and shredder_consumer_lag show of the migration. */
  private measureLag(): void {
    const admin = this.kafka.admin();
    const inputs = this.config.routes.map((r) => r.from);
    const measure = async () => {
      let total = 0;
      const committed = await admin.fetchOffsets({ groupId: this.config.groupId, topics: inputs });
      for (const topic of inputs) {
        const ends = await admin.fetchTopicOffsets(topic);
        const byPartition = new Map((committed.find((c) => c.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
        for (const end of ends) {
          const from = Math.max(byPartition.get(end.partition) ?? -1, Number(end.low));
          const lag = Math.max(0, Number(end.high) - from);
          total += lag;
          this.metrics.consumerLag.set({ topic, partition: String(end.partition) }, lag);
        }
      }
      this.lag = total;
    };
    const tick = () => {
      this.lagTimer = setTimeout(() => measure().catch(lagUnknown).finally(tick), LAG_INTERVAL_MS);
      this.lagTimer.unref();
    };
    // (lag is measured again a tick later: a failed measure leaves the last one, a failed connect none)
    const lagUnknown = (err: unknown) => this.logger.debug({ error: messageOf(err) }, 'measuring the lag failed; measured again in a moment');
    admin.connect().then(() => measure().catch(lagUnknown).finally(tick), lagUnknown);
    this.stopLag = async () => {
      clearTimeout(this.lagTimer);
      await admin.disconnect().catch(lagUnknown);
    };
  }

  /** Stops measuring the lag (set once it is measured). */
  private stopLag: () => Promise<void> = () => Promise.resolve();

  /** Ready once restored and caught up: every record of the old topics so far is re-encrypted (the cut-over signal). */
  override readiness(): Readiness {
    const base = super.readiness();
    return { ...base, ready: base.ready && this.lag === 0, lag: this.lag };
  }

  private async reencrypt(batch: Batch, task: PartitionTask, heartbeat: () => Promise<void>, ciphers: AeadRegistry, maxRecordBytes: number): Promise<BatchResult> {
    const { topic, partition } = batch;
    const source = await this.source!.partition(partition, heartbeat);
    const decrypted = await decryptBatch(batch.messages, { topic, partition, keys: source.keys, ciphers, catchUpKeys: () => source.catchUpKeys(), fields: this.fields });
    // readable records and forget markers are sealed again (a forget forgets in the new keyspace);
    // shredded ones are copied as they are, in their place
    const plain: KafkaMessage[] = [];
    const order: (KafkaMessage | number)[] = [];
    for (const record of decrypted.records) {
      if (record.status === 'shredded') {
        order.push(record.message);
      } else {
        order.push(plain.length);
        // (a record keyed by a pseudonym is sealed again as its subject's)
        plain.push({ ...record.message, key: record.key ?? record.message.key, value: record.value });
      }
    }
    const encrypted = await encryptBatch(plain, {
      topic,
      partition,
      keys: task.keys,
      ciphers,
      algorithm: this.config.algorithm,
      now: Date.now,
      maxRecordBytes,
      fields: this.fields,
    });
    // (the encryptor's dead letters hold the plaintext: dead-letter the record as it was read instead)
    const originals = new Map(batch.messages.map((m) => [m.offset, m]));
    const rejected = new Map(encrypted.rejections.map((r) => [r.offset, r.reason]));
    const deadLetters: Message[] = [...decrypted.deadLetters, ...[...rejected].map(([offset, reason]) => deadLetter(originals.get(offset)!, topic, partition, reason))];
    const outputs: Message[] = [];
    let next = 0;
    for (const item of order) {
      // (a shredded record keeps its key, except into pseudonymous keys, where it names nobody)
      if (typeof item !== 'number') outputs.push(outputRecord(item, partition, item.value, outputKey(item, undefined, task.keys.pseudonymousKeys)));
      else if (!rejected.has(plain[item].offset)) outputs.push(encrypted.outputs[next++]);
    }
    enforceErrorsTolerance(this.config.errorsTolerance, deadLetters);
    const { deadLetters: writtenDeadLetters, valuesDropped } = this.fitDeadLetters(deadLetters);
    const { keysTopic, dlqTopic } = this.config;
    const shredded = order.length - plain.length;
    return {
      topicMessages: [
        { topic: this.routes.get(topic)!, messages: outputs },
        { topic: keysTopic, messages: encrypted.keyRecords.map((r) => keyRecordMessage(r, partition)) },
        { topic: dlqTopic, messages: writtenDeadLetters },
      ],
      followUp: this.audit?.followUp({ topic, partition }, encrypted.forgets, encrypted.keyRecords.length),
      committed: async (written) => {
        await task.keys.commit(written.get(`${keysTopic}/${partition}`));
        if (encrypted.stats.forgotten > 0) this.roller?.forgotten(partition);
        const s = this.stats;
        s.recordsIn += batch.messages.length;
        s.recordsOut += outputs.length;
        s.reencrypted += encrypted.stats.encrypted;
        s.shredded += shredded;
        s.forgets += encrypted.stats.forgotten;
        s.deadLettered += deadLetters.length;
        s.keysCreated += encrypted.stats.keysCreated;
        this.metrics.countBatch(this.route(topic), topic, {
          in: batch.messages.length,
          out: outputs.length,
          deadLettered: deadLetters.length,
          deadLettersTruncated: valuesDropped,
          shredded,
          keysCreated: encrypted.stats.keysCreated,
          forgetRequests: encrypted.stats.forgotten,
          cryptoNs: decrypted.stats.cryptoNs + encrypted.stats.cryptoNs,
          cryptoRecords: encrypted.stats.encrypted,
        });
        this.logDeadLetters(writtenDeadLetters);
      },
    };
  }

  async stop(): Promise<void> {
    this.stopRequested.abort();
    await this.stopLag();
    this.roller?.stop();
    await this.processor?.stop();
    await this.source?.stop();
    await this.closeKeyring();
    this.logger.info(this.stats, 'reencryptor stopped');
  }
}
