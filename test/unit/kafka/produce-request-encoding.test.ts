// The Produce request encoder and the request framing put in kafkajs's place write the bytes kafkajs's
// own write: whole requests (several topics and partitions, transactional or not, with and without
// timestamps, keys, values and headers) compared byte for byte; a compressed request is kafkajs's own.
import { randomBytes, randomInt } from 'node:crypto';
import { createRequire } from 'node:module';

import { expect } from 'chai';

import { frameRequest, kafkajsProduceEncoding, produceRequest, type ProduceRequestFields } from '../../../src/kafka/produce-request-encoding.js';

const require = createRequire(import.meta.url);
// (kafkajs's own, kept aside when ours were installed; otherwise still in their modules)
const kafkajs = kafkajsProduceEncoding() ?? {
  produceRequest: require('kafkajs/src/protocol/requests/produce/v3/request.js'),
  frameRequest: require('kafkajs/src/protocol/request.js'),
};
const Long = require('kafkajs/src/utils/long.js');

const NOW = 1_765_000_000_000;
const message = (i: number, withTimestamp = true) => ({
  key: i % 7 === 0 ? null : randomBytes(randomInt(1, 40)),
  value: i % 11 === 0 ? null : randomBytes(randomInt(700)),
  headers: i % 3 === 0 ? { trace: `t-${i}`, many: ['a', 'b'] } : undefined,
  timestamp: withTimestamp ? String(NOW + randomInt(-5_000, 5_000)) : undefined,
});

/** The framed bytes of a request, as a connection writes them. */
async function framed(encode: typeof kafkajs, fields: ProduceRequestFields, correlationId = 42): Promise<string> {
  const request = encode.produceRequest(fields);
  expect(request.apiVersion).to.equal(3);
  return (await encode.frameRequest({ correlationId, clientId: 'kafka-shredder', request })).buffer.toString('hex');
}

async function expectSameBytes(fields: ProduceRequestFields, what: string) {
  const ours = { produceRequest, frameRequest };
  expect(await framed(ours, fields), what).to.equal(await framed(kafkajs, fields));
}

describe('the Produce request encoder and request framing in kafkajs\'s place', () => {
  it('are not kafkajs\'s own (the comparisons below compare two encoders)', () => {
    expect(kafkajs.produceRequest).to.not.equal(produceRequest);
    expect(kafkajs.frameRequest).to.not.equal(frameRequest);
  });

  it('write kafkajs\'s bytes for a transactional request of two topics and several partitions', async () => {
    await expectSameBytes({
      acks: -1, timeout: 30_000, transactionalId: 'encrypt-group-0', producerId: Long.fromValue('98765'), producerEpoch: 2, compression: 0,
      topicData: [
        { topic: 'encrypted', partitions: [{ partition: 0, firstSequence: 10, messages: Array.from({ length: 300 }, (_, i) => message(i)) }, { partition: 2, firstSequence: 0, messages: [message(1)] }] },
        { topic: 'keys', partitions: [{ partition: 0, firstSequence: 5, messages: Array.from({ length: 50 }, (_, i) => message(i + 1)) }] },
      ],
    }, 'transactional');
  });

  it('write kafkajs\'s bytes for an idempotent request, one with kafkajs\'s defaults, and for messages with equal timestamps', async () => {
    const same = Array.from({ length: 20 }, (_, i) => ({ ...message(i), timestamp: String(NOW) }));
    await expectSameBytes({ acks: 1, timeout: 5000, producerId: Long.fromValue(7), producerEpoch: 0, topicData: [{ topic: 'ü-topic', partitions: [{ partition: 1, firstSequence: 3, messages: same }] }] }, 'idempotent');
    await expectSameBytes({ acks: 1, timeout: 5000, topicData: [{ topic: 'plain', partitions: [{ partition: 0, messages: same }] }] }, 'no producer id, epoch or sequence: kafkajs\'s defaults');
  });

  it('write kafkajs\'s bytes for 50 random requests', async () => {
    for (let r = 0; r < 50; r++) {
      const topicData = Array.from({ length: randomInt(1, 4) }, (_, t) => ({
        topic: `topic-${t}-${randomInt(1000)}`,
        partitions: Array.from({ length: randomInt(1, 4) }, (_, p) => ({ partition: p, firstSequence: randomInt(1000), messages: Array.from({ length: randomInt(1, 100) }, (_, i) => message(i)) })),
      }));
      await expectSameBytes({ acks: randomInt(2) === 0 ? -1 : 1, timeout: randomInt(1, 60_000), transactionalId: randomInt(2) === 0 ? null : `tx-${r}`, producerId: Long.fromValue(randomInt(100_000)), producerEpoch: randomInt(10), topicData }, `request ${r}`);
    }
  });

  it('frame any request as kafkajs does (a Metadata request, and a null client id)', async () => {
    const encode = async () => ({ buffer: randomBytes(37) });
    const request = { apiKey: 3, apiVersion: 6, encode };
    const payload = await encode();
    const fixed = { ...request, encode: async () => payload };
    const ours = (await frameRequest({ correlationId: 7, clientId: 'client', request: fixed })).buffer.toString('hex');
    const theirs = (await kafkajs.frameRequest({ correlationId: 7, clientId: 'client', request: { ...fixed, encode: async () => Object.assign(Object.create(null), { buf: payload.buffer, buffer: payload.buffer }) } })).buffer.toString('hex');
    expect(ours).to.equal(theirs);
    const nullId = (await frameRequest({ correlationId: 8, clientId: null, request: fixed })).buffer;
    expect(nullId.readInt16BE(12)).to.equal(-1);
  });

  it('leave a compressed request to kafkajs\'s own encoder', async () => {
    const fields = { acks: -1, timeout: 1000, compression: 1, topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages: [message(1)] }] }] };
    expect(produceRequest(fields).encode).to.not.equal(undefined);
    expect(await framed({ produceRequest, frameRequest }, fields)).to.equal(await framed(kafkajs, fields));
  });
});
