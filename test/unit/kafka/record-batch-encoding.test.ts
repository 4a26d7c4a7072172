// The record batch builder put in kafkajs's place writes, for every uncompressed batch kafkajs's
// produce request asks for, the bytes kafkajs's own builder writes: compared byte for byte over edge
// cases and random batches; a compressed batch is kafkajs's own.
import { randomBytes, randomInt } from 'node:crypto';
import { createRequire } from 'node:module';

import { expect } from 'chai';

import { encodeRecordBatch, kafkajsRecordBatchBuilder, type RecordBatchFields } from '../../../src/kafka/record-batch-encoding.js';
import { encodeRecord } from '../../../src/kafka/record-encoding.js';

type Builder = (fields: RecordBatchFields) => Promise<{ buffer: Buffer; size(): number }>;
const require = createRequire(import.meta.url);
// (kafkajs's own, kept aside when ours was installed; otherwise still in its module)
const kafkajs: Builder = kafkajsRecordBatchBuilder() ?? require('kafkajs/src/protocol/recordBatch/v0/index.js').RecordBatch;
const Long = require('kafkajs/src/utils/long.js');

const records = (count: number) =>
  Array.from({ length: count }, (_, i) => encodeRecord({ key: randomBytes(randomInt(40)), value: randomBytes(randomInt(600)), offsetDelta: i, timestampDelta: randomInt(1000), headers: i % 3 === 0 ? { h: 'v' } : {} }));

async function expectSameBytes(fields: RecordBatchFields, what: string) {
  const ours = await encodeRecordBatch(fields);
  const theirs = await kafkajs(fields);
  expect(ours.buffer.toString('hex'), what).to.equal(theirs.buffer.toString('hex'));
  expect(ours.size(), what).to.equal(theirs.size());
}

describe('the record batch builder in kafkajs\'s place', () => {
  it('is not kafkajs\'s own (the comparison below compares two builders)', () => {
    expect(kafkajs).to.not.equal(encodeRecordBatch);
  });

  it('writes kafkajs\'s bytes for the batches a transactional producer asks for', async () => {
    const now = Date.now();
    await expectSameBytes({
      compression: 0, records: records(100), firstTimestamp: String(now), maxTimestamp: String(now + 999), transactional: true,
      producerId: Long.fromValue('123456789012'), producerEpoch: 3, firstSequence: 4242, lastOffsetDelta: 99,
    }, 'transactional');
  });

  it('writes kafkajs\'s bytes with kafkajs\'s defaults, for an empty batch, and for timestamps given as numbers', async () => {
    await expectSameBytes({ records: [], firstTimestamp: 5, maxTimestamp: 5 }, 'empty');
    await expectSameBytes({ records: records(3), firstTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_123, lastOffsetDelta: 2 }, 'numbers');
    await expectSameBytes({ records: records(1), firstTimestamp: '1', maxTimestamp: '1', producerId: Long.fromValue(-1), partitionLeaderEpoch: 7 }, 'defaults');
  });

  it('writes kafkajs\'s bytes for a hundred random batches', async () => {
    for (let i = 0; i < 100; i++) {
      const count = randomInt(1, 200);
      const first = randomInt(2 ** 40);
      await expectSameBytes({
        compression: 0, records: records(count), firstTimestamp: String(first), maxTimestamp: String(first + randomInt(10_000)),
        transactional: randomInt(2) === 1, producerId: Long.fromValue(String(randomInt(2 ** 40))), producerEpoch: randomInt(100),
        firstSequence: randomInt(2 ** 31), lastOffsetDelta: count - 1,
      }, `batch ${i}`);
    }
  });

  it('leaves a compressed batch to kafkajs (gzip): the same bytes', async () => {
    await expectSameBytes({ compression: 1, records: records(20), firstTimestamp: '1000', maxTimestamp: '2000', lastOffsetDelta: 19 }, 'gzip');
  });
});
