// One kafkajs transaction: everything a batch writes, plus the input offsets, commits or aborts together.
import type { Offsets, RecordMetadata, TopicMessages, Transaction } from 'kafkajs';

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
  offsets: Offsets & { consumerGroupId: string };
}

/** Sends the records and commits the offsets in one transaction; aborts on any failure and rethrows. */
export async function commitTransaction(producer: { transaction(): Promise<Transaction> }, write: TransactionalWrite): Promise<RecordMetadata[]> {
  const txn = await producer.transaction();
  try {
    const topicMessages = write.topicMessages.filter((t) => t.messages.length > 0);
    const metadata = topicMessages.length > 0 ? await txn.sendBatch({ topicMessages }) : [];
    await sendOffsetsRetrying(txn, write.offsets);
    await txn.commit();
    return metadata;
  } catch (err) {
    await txn.abort().catch(() => {});
    throw err;
  }
}
