// The linear grouping put in kafkajs's place (src/kafka/linear-grouping.ts) groups exactly as the
// grouping kafkajs ships does: compared with kafkajs's own file, read from disk.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { groupMessagesPerPartition } from '../../../src/kafka/linear-grouping.js';

type Grouping = typeof groupMessagesPerPartition<{ partition: number; value: string }>;

/** kafkajs's own groupMessagesPerPartition, evaluated from its source (the module cache holds ours). */
function kafkajsGrouping(): Grouping {
  const path = createRequire(import.meta.url).resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  const module = { exports: undefined as unknown as Grouping };
  new Function('module', readFileSync(path, 'utf8'))(module);
  return module.exports;
}

describe('linear produce grouping', () => {
  const partitioner = ({ message }: { message: { partition: number } }) => message.partition;

  it('groups as kafkajs does: each partition\'s messages in their order', () => {
    const messages = Array.from({ length: 500 }, (_, i) => ({ partition: (i * 7919) % 5, value: `m${i}` }));
    const args = { topic: 't', partitionMetadata: [0, 1, 2, 3, 4], messages, partitioner };
    const ours = groupMessagesPerPartition(args);
    expect(ours).to.deep.equal(kafkajsGrouping()(args));
    expect(Object.keys(ours)).to.deep.equal(['0', '1', '2', '3', '4']);
    expect(ours[3].map((m) => m.value)).to.deep.equal(messages.filter((m) => m.partition === 3).map((m) => m.value));
  });

  it('gives no partition when the topic has no metadata, as kafkajs does', () => {
    const args = { topic: 't', partitionMetadata: [], messages: [{ partition: 0, value: 'x' }], partitioner };
    expect(groupMessagesPerPartition(args)).to.deep.equal(kafkajsGrouping()(args));
  });
});
