// The lines of `kafka-shredder export`: valid JSON for any bytes, headers in order with repeats.
import { expect } from 'chai';
import type { KafkaMessage } from 'kafkajs';
import { exportedBytes, exportedRecord } from '../../../src/export/exported-record.js';
import { progressLine } from '../../../src/export/progress-bar.js';

const message = (fields: Partial<KafkaMessage>): KafkaMessage =>
  ({ key: null, value: null, timestamp: '1796664000000', attributes: 0, offset: '42', headers: {}, ...fields }) as KafkaMessage;

describe('export: exported records', () => {
  it('gives bytes as text when they are valid UTF-8, else as base64, and null as null', () => {
    expect(exportedBytes(Buffer.from('Zoë 🙂', 'utf8'))).to.deep.equal({ text: 'Zoë 🙂' });
    expect(exportedBytes(Buffer.from([0xc3, 0x28]))).to.deep.equal({ base64: 'wyg=' }); // an invalid sequence
    expect(exportedBytes(new Uint8Array([0xff, 0x00]))).to.deep.equal({ base64: '/wA=' });
    expect(exportedBytes(Buffer.alloc(0))).to.deep.equal({ text: '' });
    expect(exportedBytes(null)).to.equal(null);
  });

  it('keeps the record coordinates, the key, every header in order and the opened value; round-trips as JSON', () => {
    const record = exportedRecord('orders', 2, message({ key: Buffer.from('alice'), headers: { trace: [Buffer.from('a'), Buffer.from('b')], bin: Buffer.from([0xfe]) } }), {
      status: 'readable',
      value: Buffer.from('{"total":3}'),
    });
    expect(JSON.parse(JSON.stringify(record))).to.deep.equal({
      topic: 'orders',
      partition: 2,
      offset: '42',
      timestamp: '2026-12-07T17:20:00.000Z',
      status: 'readable',
      key: { text: 'alice' },
      headers: [
        { name: 'trace', value: { text: 'a' } },
        { name: 'trace', value: { text: 'b' } },
        { name: 'bin', value: { base64: '/g==' } },
      ],
      value: { text: '{"total":3}' },
    });
  });

  it('says why a record is unreadable and which fields are shredded, only when there is something to say', () => {
    const unreadable = exportedRecord('t', 0, message({ key: Buffer.from('a'), value: Buffer.from('junk') }), { status: 'unreadable', value: null, reason: 'invalid envelope: too short' });
    expect(unreadable).to.include({ status: 'unreadable', reason: 'invalid envelope: too short', value: null });
    const shredded = exportedRecord('t', 0, message({ key: Buffer.from('a') }), { status: 'shredded', value: Buffer.from('{"email":null}'), shreddedFields: ['$.email'] });
    expect(shredded.shreddedFields).to.deep.equal(['$.email']);
    expect(exportedRecord('t', 0, message({}), { status: 'tombstone', value: null })).to.not.have.any.keys('reason', 'shreddedFields');
  });
});

describe('export: progress line', () => {
  it('shows the share of offsets read, the records scanned, the rate and what was found', () => {
    const line = progressLine({ topic: 'orders', scanned: 250_000, total: 1_000_000, found: 12 }, 2000);
    expect(line).to.equal('[######------------------]  25%  250,000 records scanned, 125,000/s, 12 of the subject\'s  (orders)');
    expect(progressLine({ topic: 't', scanned: 5, total: 0, found: 0 }, 0)).to.contain('100%').and.contain(' 0/s');
  });
});
