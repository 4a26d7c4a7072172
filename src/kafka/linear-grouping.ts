// kafkajs 2.2.4 groups each produce request's messages by partition with `[...current, message]`: a
// copy of the partition's array per message, quadratic in the request's size. At the request sizes a
// processor writes (about a thousand records each) that is most of the garbage a processor makes, and
// a large share of its main thread, which bounds its throughput. This module
// puts a linear grouping, with the same result, in kafkajs's place before kafkajs loads: it must be
// evaluated before kafkajs, so the CLI, the e2e benchmark and the integration test hooks import it
// first; the library entry does not (it would change a host application's kafkajs). Loaded too late,
// or with another kafkajs layout, it changes nothing (kafkajs keeps its own).
import { createRequire } from 'node:module';

interface GroupingArgs<Message> {
  topic: string;
  partitionMetadata: readonly unknown[];
  messages: readonly Message[];
  partitioner: (args: { topic: string; partitionMetadata: readonly unknown[]; message: Message }) => number;
}

let groupedRequests = 0;

/** kafkajs's groupMessagesPerPartition, in linear time: each partition's messages, in their order. */
export function groupMessagesPerPartition<Message>({ topic, partitionMetadata, messages, partitioner }: GroupingArgs<Message>): Record<number, Message[]> {
  groupedRequests++;
  const result: Record<number, Message[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const current = result[partition];
    if (current === undefined) result[partition] = [message];
    else current.push(message);
  }
  return result;
}

/** Produce requests grouped here so far (tests check kafkajs really goes through it). */
export const linearlyGroupedRequests = (): number => groupedRequests;

function install(): boolean {
  const require = createRequire(import.meta.url);
  try {
    const grouping = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
    // (kafkajs's producer takes the function when it loads: once loaded, it is too late)
    if (require.cache[require.resolve('kafkajs/src/producer/sendMessages.js')] !== undefined) return false;
    require(grouping);
    require.cache[grouping]!.exports = groupMessagesPerPartition;
    return true;
  } catch {
    return false;
  }
}

/** Whether kafkajs groups its produce requests with groupMessagesPerPartition above. */
export const linearGroupingInstalled = install();
