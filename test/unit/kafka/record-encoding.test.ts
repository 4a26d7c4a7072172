// The record encoder put in kafkajs's place writes, for every record kafkajs takes, the bytes kafkajs's
// own encoder writes: compared byte for byte over edge cases and random records.
import { randomBytes, randomInt } from 'node:crypto';
import { createRequire } from 'node:module';

import { expect } from 'chai';

import { encodeRecord, kafkajsRecordEncoder, type RecordFields } from '../../../src/kafka/record-encoding.js';

type Encoder = (record: RecordFields) => { buffer: Buffer };
// (kafkajs's own, kept aside when ours was installed; otherwise still in its module)
const kafkajs: Encoder = kafkajsRecordEncoder() ?? createRequire(import.meta.url)('kafkajs/src/protocol/recordBatch/record/v0/index.js');

const hex = (record: { buffer: Buffer }) => record.buffer.toString('hex');

describe('the record encoder in kafkajs\'s place', () => {
  it('is not kafkajs\'s own (the comparison below compares two encoders)', () => {
    expect(kafkajs).to.not.equal(encodeRecord);
  });

  const cases: [string, RecordFields][] = [
    ['an empty record', {}],
    ['a key and a value as text', { key: 'subject-1', value: 'hello', offsetDelta: 3, timestampDelta: 12 }],
    ['bytes', { key: Buffer.from([0, 255]), value: randomBytes(300), offsetDelta: 0, timestampDelta: 0 }],
    ['a tombstone', { key: 'k', value: null, offsetDelta: 1 }],
    ['no key', { key: null, value: 'v' }],
    ['multi-byte text', { key: 'ünïcødé ✓ 🔑', value: 'ζ'.repeat(200) }],
    ['headers, one repeated', { key: 'k', value: 'v', headers: { a: 'x', b: ['y', 'z'], c: Buffer.from([1, 2, 3]), 'ü': '✓' } }],
    ['an empty header value and key', { key: '', value: '', headers: { '': '' } }],
    ['a negative timestamp delta', { key: 'k', value: 'v', timestampDelta: -5_000 }],
    ['a large timestamp delta', { key: 'k', value: 'v', timestampDelta: 86_400_000 * 365 * 50 }],
    ['a large offset delta', { key: 'k', value: 'v', offsetDelta: 2_000_000 }],
    ['a value whose length needs three varint bytes', { key: 'k', value: randomBytes(70_000) }],
    ['a record over 4 KiB (not from the pool)', { key: 'k', value: randomBytes(5000), headers: { h: randomBytes(100) } }],
  ];
  for (const [what, record] of cases) {
    it(`writes kafkajs's bytes for ${what}`, () => {
      expect(hex(encodeRecord(record))).to.equal(hex(kafkajs(record)));
    });
  }

  it('writes kafkajs\'s bytes for a thousand random records', () => {
    for (let i = 0; i < 1000; i++) {
      const headers: Record<string, Buffer | string | (Buffer | string)[]> = {};
      for (let h = randomInt(4); h > 0; h--) headers[`h${randomInt(10)}`] = randomInt(3) === 0 ? [randomBytes(randomInt(20)), 'x'] : randomBytes(randomInt(200));
      const record: RecordFields = {
        key: randomInt(5) === 0 ? null : randomBytes(randomInt(100)),
        value: randomInt(5) === 0 ? null : randomBytes(randomInt(2000)),
        headers,
        offsetDelta: randomInt(100_000),
        timestampDelta: randomInt(-100_000, 100_000),
      };
      expect(hex(encodeRecord(record)), `record ${i}`).to.equal(hex(kafkajs(record)));
    }
  });
});
