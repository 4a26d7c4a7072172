// The broker behaviours the product rests on, checked against a real Apache Kafka.
import { expect } from 'chai';
import type { Kafka } from 'kafkajs';
import { linearGroupingInstalled, linearlyGroupedRequests } from '../../src/kafka/linear-grouping.js';
import { produceRequestEncodingInstalled } from '../../src/kafka/produce-request-encoding.js';
import { recordBatchEncodingInstalled } from '../../src/kafka/record-batch-encoding.js';
import { recordEncodingInstalled } from '../../src/kafka/record-encoding.js';
import { createTopic, eventually, readPartition, testKafka, uniqueName } from '../support/kafka.js';

const text = (value: Buffer | null) => (value === null ? null : value.toString('utf8'));

describe('local Apache Kafka broker', () => {
  let kafka: Kafka;
  before(() => {
    kafka = testKafka();
  });

  it('round-trips produced records to a consumer, with key, headers and order', async () => {
    const topic = uniqueName('round-trip');
    await createTopic(kafka, { topic, numPartitions: 1 });
    const producer = kafka.producer();
    await producer.connect();
    const sent = Array.from({ length: 50 }, (_, i) => ({ key: `user-${i % 3}`, value: `event ${i}`, headers: { seq: String(i) } }));
    await producer.send({ topic, messages: sent });
    await producer.disconnect();

    const received = await readPartition(kafka, topic);
    expect(received.map((m) => text(m.value))).to.deep.equal(sent.map((m) => m.value));
    expect(received.map((m) => text(m.key))).to.deep.equal(sent.map((m) => m.key));
    expect(received.map((m) => m.headers?.seq?.toString())).to.deep.equal(sent.map((m) => m.headers.seq));
  });

  it('groups produce requests through the linear grouping (installed before kafkajs loaded, as the CLI does)', async () => {
    expect(linearGroupingInstalled).to.equal(true);
    const topic = uniqueName('grouping');
    await createTopic(kafka, { topic, numPartitions: 3 });
    const before = linearlyGroupedRequests();
    const producer = kafka.producer();
    await producer.connect();
    const sent = Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 3 }));
    await producer.send({ topic, messages: sent });
    await producer.disconnect();
    expect(linearlyGroupedRequests()).to.be.greaterThan(before);
    for (const partition of [0, 1, 2]) {
      const received = await readPartition(kafka, topic, partition);
      expect(received.map((m) => text(m.value)), `partition ${partition}`).to.deep.equal(sent.filter((m) => m.partition === partition).map((m) => m.value));
    }
  });

  it('writes records through the record, batch and Produce request encoders installed before kafkajs loaded (as the CLI does), which the broker and a consumer read back whole', async () => {
    expect(recordEncodingInstalled).to.equal(true);
    expect(recordBatchEncodingInstalled).to.equal(true);
    expect(produceRequestEncodingInstalled).to.equal(true);
    const topic = uniqueName('record-encoding');
    await createTopic(kafka, { topic, numPartitions: 1 });
    const producer = kafka.producer();
    await producer.connect();
    const timestamp = Date.now() - 86_400_000;
    const sent = [
      { key: 'plain', value: 'text', headers: { one: 'a', many: ['b', 'c'] } },
      { key: null, value: Buffer.from([0, 1, 2, 255]), headers: { bytes: Buffer.from([9, 8]) }, timestamp: String(timestamp) },
      { key: 'tombstone', value: null },
      { key: 'ünïcødé ✓', value: 'x'.repeat(70_000), timestamp: String(timestamp + 5_000) },
    ];
    await producer.send({ topic, messages: sent });
    await producer.disconnect();
    const received = await readPartition(kafka, topic, 0);
    expect(received.map((m) => m.key?.toString() ?? null)).to.deep.equal(sent.map((m) => m.key));
    expect(received[0].value?.toString()).to.equal('text');
    expect(received[0].headers?.one?.toString()).to.equal('a');
    expect((received[0].headers?.many as Buffer[]).map(String)).to.deep.equal(['b', 'c']);
    expect(received[1].value).to.deep.equal(Buffer.from([0, 1, 2, 255]));
    expect(received[1].headers?.bytes).to.deep.equal(Buffer.from([9, 8]));
    expect(received[1].timestamp).to.equal(String(timestamp));
    expect(received[2].value).to.equal(null);
    expect(received[3].value?.toString()).to.equal('x'.repeat(70_000));
    expect(received[3].timestamp).to.equal(String(timestamp + 5_000));
  });

  it('shows committed transactional records to read_committed consumers and hides aborted ones', async () => {
    const topic = uniqueName('transactions');
    const input = uniqueName('transactions-input');
    await createTopic(kafka, { topic, numPartitions: 1 });
    await createTopic(kafka, { topic: input, numPartitions: 1 });
    const groupId = uniqueName('txn-group');
    const producer = kafka.producer({ transactionalId: uniqueName('txn'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const committed = await producer.transaction();
      await committed.send({ topic, messages: [{ key: 'a', value: 'committed-1' }] });
      // the consume-transform-produce step: input offsets commit in the same transaction
      await committed.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '7' }] }] });
      await committed.commit();

      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: [{ key: 'a', value: 'aborted' }] });
      await aborted.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '9' }] }] });
      await aborted.abort();

      const last = await producer.transaction();
      await last.send({ topic, messages: [{ key: 'a', value: 'committed-2' }] });
      await last.commit();
    } finally {
      await producer.disconnect();
    }

    // (commit() returns before the broker has written the transaction's markers: until then the
    // partition's last stable offset is below committed-2, and a read to the end offsets stops there)
    const readCommitted = await eventually('both committed records readable', async () => {
      const records = await readPartition(kafka, topic);
      return records.length >= 2 ? records : undefined;
    });
    expect(readCommitted.map((m) => text(m.value))).to.deep.equal(['committed-1', 'committed-2']);
    // the aborted record is in the log: only the isolation level hides it
    const readUncommitted = await readPartition(kafka, topic, 0, { readUncommitted: true });
    expect(readUncommitted.map((m) => text(m.value))).to.deep.equal(['committed-1', 'aborted', 'committed-2']);

    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId, topics: [input] });
    await admin.disconnect();
    expect(offsets[0].partitions[0].offset).to.equal('7');
  });

  it('erases an overwritten value from a compacted topic after a tombstone, within a bounded time', async function () {
    this.timeout(120_000);
    const topic = uniqueName('compacted');
    await createTopic(kafka, {
      topic,
      numPartitions: 1,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'segment.ms', value: '200' },
        { name: 'min.cleanable.dirty.ratio', value: '0.01' },
        { name: 'min.compaction.lag.ms', value: '0' },
        { name: 'max.compaction.lag.ms', value: '1000' },
        { name: 'delete.retention.ms', value: '100' },
      ],
    });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic, messages: [{ key: 'subject-1', value: 'wrapped-key-secret' }, { key: 'subject-2', value: 'kept' }] });
      await producer.send({ topic, messages: [{ key: 'subject-1', value: null }] });
      expect((await readPartition(kafka, topic)).map((m) => text(m.value))).to.include('wrapped-key-secret');

      // The active segment is never cleaned; it rolls only when a record arrives after segment.ms,
      // so keep appending a filler record while waiting for the cleaner.
      const deadline = Date.now() + 90_000;
      let remaining = await readPartition(kafka, topic);
      while (remaining.some((m) => text(m.value) === 'wrapped-key-secret')) {
        if (Date.now() > deadline) throw new Error('the log cleaner did not remove the overwritten value in 90 s');
        await new Promise((r) => setTimeout(r, 500));
        await producer.send({ topic, messages: [{ key: 'filler', value: String(Date.now()) }] });
        remaining = await readPartition(kafka, topic);
      }
      expect(remaining.map((m) => text(m.key))).to.include('subject-2');
      expect(remaining.filter((m) => text(m.key) === 'subject-2').map((m) => text(m.value))).to.deep.equal(['kept']);
    } finally {
      await producer.disconnect();
    }
  });
});
