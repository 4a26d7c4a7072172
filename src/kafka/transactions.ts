// One kafkajs transaction: everything a batch writes, plus the input offsets, commits or aborts together.
import type { CompressionTypes, Message, Offsets, TopicMessages, Transaction } from 'kafkajs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isConcurrentTransactions(err: unknown): boolean {
  const e = err as { type?: string; code?: number };
  return e?.type === 'CONCURRENT_TRANSACTIONS' || e?.code === 51;
}

/**
 * kafkajs does not retry AddOffsetsToTxn on CONCURRENT_TRANSACTIONS (kafkajs issue 430), which the
 * broker answers while it still writes the previous transaction's markers; it is safe to repeat.
 */
export async function sendOffsetsRetrying(txn: Transaction, offsets: Offsets & { consumerGroupId: string }): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await txn.sendOffsets(offsets);
      return;
    } catch (err) {
      if (!isConcurrentTransactions(err) || attempt >= 20) throw err;
      await sleep(Math.min(10 * 2 ** attempt, 500));
    }
  }
}

export interface TransactionalWrite {
  topicMessages: TopicMessages[];
  /** Input offsets to commit with the records (absent for a write that consumed nothing). */
  offsets?: Offsets & { consumerGroupId: string };
  /** Of the written record batches (default none; see src/kafka/compression.ts). */
  compression?: CompressionTypes;
  /**
   * Records that name offsets of the records above (an erasure's audit entry names its tombstone's):
   * made once those are sent, from their partitions' next offsets, and sent in the same transaction.
   */
  followUp?: (written: WrittenOffsets) => TopicMessages[];
}

/** Next offset of each written topic-partition (`topic/partition`), after the transaction's records. */
export type WrittenOffsets = Map<string, number>;

/**
 * Produce requests are cut at this many bytes, or fewer when a written topic takes smaller record
 * batches (see requestBytesFor): a partition's records in one request form one record batch, which the
 * broker refuses above the topic's max.message.bytes (1 MB by default). Encryption adds 38 bytes a
 * record, so an output batch is larger than the input batch it came from.
 */
export const MAX_REQUEST_BYTES = 512 * 1024;

/** The request size for topics whose smallest max.message.bytes is `maxMessageBytes`. */
export const requestBytesFor = (maxMessageBytes: number): number => Math.min(MAX_REQUEST_BYTES, maxMessageBytes);

const byteLength = (v: unknown): number =>
  v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : Array.isArray(v) ? v.reduce((n: number, x) => n + byteLength(x), 0) : (v as Buffer).length;

/** Key, value and header bytes of a record (what its size in a record batch grows with). */
export function recordBytes(message: Pick<Message, 'key' | 'value' | 'headers'>): number {
  let size = byteLength(message.key) + byteLength(message.value);
  for (const name in message.headers ?? {}) size += name.length + byteLength(message.headers![name]);
  return size;
}

// (an upper bound of a record's size in a record batch: its length, attributes, deltas and the varints
// of its key, value and a few headers take well under 70 bytes, and the batch header is 61; counting
// uncompressed bytes, it bounds a compressed batch too: a codec adds less to bytes that do not
// compress than that slack)
const sizeOf = (message: Message) => 70 + recordBytes(message);

/**
 * Splits the messages into requests of at most `maxRequestBytes` (a larger record goes alone), keeping
 * their order per topic.
 */
export function chunkMessages(topicMessages: TopicMessages[], maxRequestBytes = MAX_REQUEST_BYTES): TopicMessages[][] {
  const requests: TopicMessages[][] = [];
  let current: TopicMessages[] = [];
  let size = 0;
  for (const { topic, messages } of topicMessages) {
    let run: Message[] = [];
    for (const message of messages) {
      const bytes = sizeOf(message);
      if (size + bytes > maxRequestBytes && size > 0) {
        if (run.length > 0) current.push({ topic, messages: run });
        requests.push(current);
        current = [];
        run = [];
        size = 0;
      }
      run.push(message);
      size += bytes;
    }
    if (run.length > 0) current.push({ topic, messages: run });
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

/**
 * Sends the records, in requests of at most `maxRequestBytes`, and commits the offsets in one
 * transaction; aborts on any failure and rethrows.
 */
export async function commitTransaction(producer: { transaction(): Promise<Transaction> }, write: TransactionalWrite, maxRequestBytes = MAX_REQUEST_BYTES): Promise<WrittenOffsets> {
  const txn = await producer.transaction();
  const written: WrittenOffsets = new Map();
  const send = async (topicMessages: TopicMessages[]) => {
    for (const request of chunkMessages(topicMessages.filter((t) => t.messages.length > 0), maxRequestBytes)) {
      const metadata = await txn.sendBatch({ topicMessages: request, compression: write.compression });
      for (const { topic, messages } of request) {
        const counts = new Map<number, number>();
        for (const m of messages) if (m.partition !== undefined) counts.set(m.partition, (counts.get(m.partition) ?? 0) + 1);
        for (const [partition, count] of counts) {
          const meta = metadata.find((r) => r.topicName === topic && r.partition === partition);
          if (meta) written.set(`${topic}/${partition}`, Number(meta.baseOffset) + count);
        }
      }
    }
  };
  try {
    await send(write.topicMessages);
    if (write.followUp) await send(write.followUp(new Map(written)));
    if (write.offsets) await sendOffsetsRetrying(txn, write.offsets);
    await txn.commit();
    return written;
  } catch (err) {
    await txn.abort().catch(() => undefined); // (the write's error is the one to report; a transaction left open is aborted by the next InitProducerId or its timeout)
    throw err;
  }
}
