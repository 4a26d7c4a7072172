// `kafka-shredder decrypt`: the decryptor processor, for consumers that cannot use the library. Joins
// each route's encrypted topic with the keys topic and writes plaintext (short retention) to the
// route's output, forget markers included, in one transaction per batch with the input offsets.
import type { Batch, IHeaders, Message } from 'kafkajs';
import { loadAeadRegistry, type AeadRegistry } from '../crypto/index.js';
import { compressionType } from '../kafka/compression.js';
import { deadLetter } from '../kafka/dead-letter.js';
import { recordBytes } from '../kafka/transactions.js';
import { RECORD_BATCH_OVERHEAD } from '../encryptor/output-records.js';
import { decryptorTopicRoles } from '../kafka/topics.js';
import type { PartitionTask } from '../processor/partition-task.js';
import { RouteProcessor } from '../processor/route-processor.js';
import { batchResult, StreamProcessor, type BatchResult } from '../processor/stream-processor.js';
import { enforceErrorsTolerance } from '../processor/errors-tolerance.js';
import { SHREDDED_FIELDS_HEADER, SHREDDED_STATUS, STATUS_HEADER } from '../wire/headers.js';
import { decryptBatch, type DecryptedBatch, type DecryptedRecord } from './decrypt-batch.js';

/** The dead-letter reason of a record its output topic cannot take once decrypted. */
export const tooLargeOnceDecrypted = (outputBytes: number, maxRecordBytes: number) =>
  `record too large once decrypted: ${outputBytes} bytes, the output topic takes ${maxRecordBytes} (max.message.bytes)`;

export interface DecryptorStats {
  recordsIn: number;
  recordsOut: number;
  deadLettered: number;
  shredded: number;
  forgets: number;
  /** Batches that waited for the keys topic (a record's key was not read yet, or was destroyed). */
  keyWaits: number;
}

export class Decryptor extends RouteProcessor {
  readonly stats: DecryptorStats = { recordsIn: 0, recordsOut: 0, deadLettered: 0, shredded: 0, forgets: 0, keyWaits: 0 };

  async start(): Promise<void> {
    const { config } = this;
    await this.prepareKeys();
    const layout = await this.prepareTopics(decryptorTopicRoles(config.routes));
    const ciphers = await loadAeadRegistry();
    this.processor = new StreamProcessor({
      ...this.commonOptions(layout),
      name: 'decrypt',
      followKeys: true,
      // (a forget marker read after its tombstone still finds its subject, up to the erasure deadline)
      retiredPseudonymMs: config.erasureDeadlineMs,
      compression: compressionType(config.outputCompression), // (plaintext compresses, unlike ciphertext)
      handler: (batch, task) => this.decrypt(batch, task, ciphers, layout.outputsMaxMessageBytes.get(this.routes.get(batch.topic)!)!),
    });
    await this.processor.start();
    this.logger.info({ routes: config.routes, partitions: layout.partitions, onShredded: config.onShredded, compression: config.outputCompression }, 'decryptor started');
  }

  /** The output record for a decrypted one, or undefined when it is skipped (SHREDDER_ON_SHREDDED=skip). */
  private output(record: DecryptedRecord, partition: number): Message | undefined {
    const { message, status, value } = record;
    // (a record keyed by a pseudonym is given back its subject id as its key)
    const base: Message = { key: record.key ?? message.key, value, partition, timestamp: message.timestamp, headers: message.headers };
    if (status !== 'shredded') return base; // forget markers keep their shredder.command header
    if (this.config.onShredded === 'skip') return undefined;
    const headers: IHeaders = { ...message.headers, [STATUS_HEADER]: SHREDDED_STATUS };
    // field mode: the record keeps its readable fields; the header names the shredded ones
    if (record.shreddedFields) headers[SHREDDED_FIELDS_HEADER] = record.shreddedFields.join(',');
    return { ...base, headers };
  }

  /** Synchronous when every key of the batch is in memory: see decryptBatch. */
  private decrypt(batch: Batch, task: PartitionTask, ciphers: AeadRegistry, maxRecordBytes: number): BatchResult | Promise<BatchResult> {
    const decrypted = decryptBatch(batch.messages, {
      topic: batch.topic,
      partition: batch.partition,
      keys: task.keys,
      ciphers,
      catchUpKeys: () => task.catchUpKeys(),
      fields: this.fields,
    });
    return batchResult(decrypted, (d) => this.written(batch, d, maxRecordBytes));
  }

  /** What the transaction of a decrypted batch writes, and what follows its commit. */
  /**
   * `maxRecordBytes`: what the route's output topic takes (max.message.bytes); a larger record would
   * be refused by the broker, its batch aborted on every retry.
   */
  private written(batch: Batch, decrypted: DecryptedBatch, maxRecordBytes: number): BatchResult {
    const { partition } = batch;
    const outputs: Message[] = [];
    const deadLetters = decrypted.deadLetters;
    for (const record of decrypted.records) {
      if (record.status === 'shredded' && this.config.onShredded === 'dlq') {
        deadLetters.push(deadLetter(record.message, batch.topic, partition, 'shredded: the subject was forgotten, its key is destroyed'));
        continue;
      }
      const output = this.output(record, partition);
      if (!output) continue;
      // (counted uncompressed: with KAFKA_COMPRESSION one that would just fit compressed goes to the dead letters too, the safe side)
      const outputBytes = recordBytes(output) + RECORD_BATCH_OVERHEAD;
      if (outputBytes > maxRecordBytes) deadLetters.push(deadLetter(record.message, batch.topic, partition, tooLargeOnceDecrypted(outputBytes, maxRecordBytes)));
      else outputs.push(output);
    }
    enforceErrorsTolerance(this.config.errorsTolerance, deadLetters);
    const { deadLetters: written, valuesDropped } = this.fitDeadLetters(deadLetters);
    // What committed() needs, taken now: capturing `decrypted` would keep every record's
    // DecryptedRecord alive through the transaction's I/O, into the old generation.
    const { stats } = decrypted;
    const forgotten = stats.forgets > 0 ? decrypted.records.filter((r) => r.status === 'forget').map((r) => r.key ?? r.message.key) : [];
    const recordsIn = batch.messages.length;
    return {
      topicMessages: [
        { topic: this.routes.get(batch.topic)!, messages: outputs },
        { topic: this.config.dlqTopic, messages: written },
      ],
      committed: async () => {
        const s = this.stats;
        s.recordsIn += recordsIn;
        s.recordsOut += outputs.length;
        s.deadLettered += deadLetters.length;
        s.shredded += stats.shredded;
        s.forgets += stats.forgets;
        s.keyWaits += stats.keyWaits;
        this.metrics.countBatch(this.route(batch.topic), batch.topic, {
          in: recordsIn,
          out: outputs.length,
          deadLettered: deadLetters.length,
          deadLettersTruncated: valuesDropped,
          shredded: stats.shredded,
          forgetRequests: stats.forgets,
          cryptoNs: stats.cryptoNs,
          cryptoRecords: stats.decrypted,
        });
        for (const key of forgotten) {
          this.logger.info({ subject: key ? this.subjectRef(new Uint8Array(key)) : undefined, partition }, 'forget marker forwarded');
        }
        this.logDeadLetters(written);
      },
    };
  }

  async stop(): Promise<void> {
    this.stopRequested.abort();
    await this.processor?.stop();
    await this.closeKeyring();
    this.logger.info(this.stats, 'decryptor stopped');
  }
}
