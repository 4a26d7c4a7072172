// Dead letters: the contract's reason and source headers, the Kafka Connect-style context headers,
// a class for every reason the processors give, and SHREDDER_ERRORS_TOLERANCE=none.
import { expect } from 'chai';
import { createRequire } from 'node:module';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { jsonSelection, scanRecord } from '../../../src/formats/json-field-format.js';
import { avroFields } from '../../../src/formats/registry/avro-fields.js';
import { parseProtobufFrame, parseRegistryFrame } from '../../../src/wire/registry-framing.js';
import { fieldEnvelope } from '../../../src/fields/field-envelope.js';
import { classifyReason, deadLetter, deadLetterBatchBytes, fitDeadLetters } from '../../../src/kafka/dead-letter.js';
import { enforceErrorsTolerance, IntolerableRecordError } from '../../../src/processor/errors-tolerance.js';
import { parseEnvelope } from '../../../src/wire/envelope.js';

const message = (offset: string, value: string | null, key: string | null = 'alice'): KafkaMessage =>
  ({ key: key === null ? null : Buffer.from(key), value: value === null ? null : Buffer.from(value), offset, timestamp: '1700000000000', headers: { 'x-app': Buffer.from('orders') }, attributes: 0, size: 0 }) as unknown as KafkaMessage;

// kafkajs' own record batch encoder: what the broker measures against max.message.bytes
const kafkajs = createRequire(import.meta.url);
const { RecordBatch } = kafkajs('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (batch: { records: unknown[]; firstTimestamp?: number; maxTimestamp?: number }) => Promise<{ buffer: Buffer }> };
const Record = kafkajs('kafkajs/src/protocol/recordBatch/record/v0') as (record: { key: unknown; value: unknown; headers?: IHeaders; timestampDelta?: number; offsetDelta?: number }) => unknown;
/** The bytes of `dead` alone in a record batch as kafkajs encodes it, far from its batch's first timestamp. */
const encodedBatchBytes = async (dead: Message) =>
  (await RecordBatch({ records: [Record({ key: dead.key, value: dead.value, headers: dead.headers as IHeaders, timestampDelta: 2 ** 40, offsetDelta: 2 ** 20 })] })).buffer.length;
const headersText = (dead: Message) => Object.fromEntries(Object.entries(dead.headers ?? {}).map(([k, v]) => [k, v!.toString()]));

/** The reason the real code gives for `work`'s failure. */
function reasonOf(work: () => unknown): string {
  try {
    work();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a failure');
}

describe('dead letters', () => {
  it('keep the record and its headers, with the reason, source, class, stage, topic, partition and offset', () => {
    const dead = deadLetter(message('42', 'orphan', null), 'orders-plain', 2, 'no subject: the record key is null');
    expect(dead.key).to.equal(null);
    expect(dead.value!.toString()).to.equal('orphan');
    expect(dead.timestamp).to.equal('1700000000000');
    const headers = Object.fromEntries(Object.entries(dead.headers!).map(([k, v]) => [k, v!.toString()]));
    expect(headers).to.deep.equal({
      'x-app': 'orders',
      'shredder.error': 'no subject: the record key is null',
      'shredder.source': 'orders-plain/2/42',
      'shredder.error.class': 'NoSubject',
      'shredder.error.stage': 'subject',
      'shredder.error.topic': 'orders-plain',
      'shredder.error.partition': '2',
      'shredder.error.offset': '42',
    });
  });

  it('give every reason the processors write a class and a stage', () => {
    const fields = jsonSelection(['$.email'], '$.userId');
    const cases: [string, string, string][] = [
      ['no subject: the record key is empty or null', 'NoSubject', 'subject'],
      [reasonOf(() => scanRecord(Buffer.from('{"email":"a@b"}'), fields)), 'NoSubject', 'subject'],
      [reasonOf(() => scanRecord(Buffer.from('{"email":'), fields)), 'NotJson', 'parse'],
      [reasonOf(() => scanRecord(Buffer.from('[1,2]'), fields)), 'NotJson', 'parse'],
      [reasonOf(() => scanRecord(Buffer.from([0x7b, 0xff, 0x7d]), fields)), 'NotJson', 'parse'],
      [reasonOf(() => parseEnvelope(Buffer.from('hello, not encrypted'))), 'InvalidEnvelope', 'parse'],
      [reasonOf(() => parseEnvelope(Buffer.from([0x01]))), 'InvalidEnvelope', 'parse'],
      [reasonOf(() => parseEnvelope(Buffer.from([0x01, 0x09, ...Buffer.alloc(40)]))), 'InvalidEnvelope', 'parse'],
      [reasonOf(() => parseEnvelope(Buffer.from([0x01, 0x01, ...Buffer.alloc(10)]))), 'InvalidEnvelope', 'parse'],
      [reasonOf(() => fieldEnvelope('"shr1:@@@"')), 'InvalidEnvelope', 'parse'],
      ['key unavailable: data key wrapped with master key id 2, this process has id 1', 'KeyUnavailable', 'key'],
      ['record too large once encrypted: 1048626 bytes, the output topic takes 1048588 (max.message.bytes)', 'RecordTooLarge', 'encrypt'],
      ['record too large once decrypted: 1048626 bytes, the output topic takes 1048588 (max.message.bytes)', 'RecordTooLarge', 'decrypt'],
      ['authentication failed: the record was altered, forged, or moved to another subject', 'AuthenticationFailed', 'decrypt'],
      ['a decrypted field is not valid UTF-8 JSON text', 'InvalidPlaintext', 'decrypt'],
      ['shredded: the subject was forgotten, its key is destroyed', 'Shredded', 'decrypt'],
      [reasonOf(() => parseRegistryFrame(Buffer.from('plain'))), 'NotRegistryFrame', 'parse'],
      [reasonOf(() => parseRegistryFrame(Buffer.alloc(0))), 'NotRegistryFrame', 'parse'],
      [reasonOf(() => parseRegistryFrame(Buffer.from([0, 1]))), 'NotRegistryFrame', 'parse'],
      [reasonOf(() => parseProtobufFrame(Buffer.from([0, 0, 0, 0, 1]))), 'NotRegistryFrame', 'parse'],
      ['schema id 7 is not in the schema registry', 'SchemaUnusable', 'parse'],
      ['schema id 7 cannot carry its selected fields encrypted: $.age is of type int in schema id 7', 'SchemaUnusable', 'parse'],
      [reasonOf(() => avroFields.compile({ id: 7, schemaType: 'AVRO', schema: '{"type":"record"}', references: [], referenced: [] }, { paths: [], tags: [] })), 'SchemaUnusable', 'parse'],
      ['JSON schema id 7 is not valid JSON', 'SchemaUnusable', 'parse'],
      ['not Avro of schema id 7: truncated buffer', 'NotOfSchema', 'parse'],
      ['not Avro of its schema: 5 bytes needed, 1 left at byte 3', 'NotOfSchema', 'parse'],
      ['not Protobuf of schema id 7: index out of range (decoding message shop.Order)', 'NotOfSchema', 'parse'],
      ['$.replies[*].author is nested deeper than 32 messages: fields tagged PII are not looked for that deep', 'NotOfSchema', 'parse'],
      ['a decrypted string field is not valid UTF-8', 'InvalidPlaintext', 'decrypt'],
    ];
    for (const [reason, errorClass, stage] of cases) expect(classifyReason(reason), reason).to.deep.equal({ errorClass, stage });
    expect(classifyReason('something new')).to.deep.equal({ errorClass: 'Unknown', stage: 'unknown' });
  });

  it('stop the processor under SHREDDER_ERRORS_TOLERANCE=none, naming the record by its source, but not for shredded records sent there on purpose', () => {
    const bad = deadLetter(message('7', 'x', null), 'orders-plain', 0, 'no subject: the record key is null');
    const shredded = deadLetter(message('8', 'x'), 'orders', 0, 'shredded: the subject was forgotten, its key is destroyed');
    expect(() => enforceErrorsTolerance('all', [bad])).not.to.throw();
    expect(() => enforceErrorsTolerance('none', [])).not.to.throw();
    expect(() => enforceErrorsTolerance('none', [shredded])).not.to.throw();
    expect(() => enforceErrorsTolerance('none', [shredded, bad])).to.throw(IntolerableRecordError, /orders-plain\/0\/7 cannot be processed \(NoSubject: no subject/);
  });

  it('bound the bytes a dead letter takes in a record batch from above, by little', async () => {
    const base = deadLetter(message('123456789', 'x'), 'orders-plain-with-a-rather-long-topic-name', 11, 'record too large once encrypted: 12582950 bytes, the output topic takes 12582912 (max.message.bytes)');
    const cases: Message[] = [
      base,
      { ...base, value: Buffer.alloc(300_000, 1) },
      { ...base, key: Buffer.alloc(200, 2), headers: { ...base.headers, many: ['a', 'b', 'c'], [`h${'x'.repeat(300)}`]: Buffer.alloc(70_000) } },
      { ...base, key: null, value: null },
    ];
    for (const dead of cases) {
      const encoded = await encodedBatchBytes(dead);
      expect(deadLetterBatchBytes(dead)).to.be.at.least(encoded).and.at.most(encoded + 200);
    }
  });

  it('that the dead letter topic cannot take are written without their value, saying why and how large it was', async () => {
    const small = deadLetter(message('1', 'small'), 'in', 0, 'no subject: the record key is null');
    const large = deadLetter({ ...message('2', null), value: Buffer.alloc(2 * 1024 * 1024, 7) } as KafkaMessage, 'in', 0, 'record too large once encrypted: 2097290 bytes, the output topic takes 1048588 (max.message.bytes)');
    const limit = 2 * 1024 * 1024; // the input's limit: the value fits, the value with its headers does not
    const same = [small];
    expect(fitDeadLetters(same, limit)).to.deep.equal({ deadLetters: same, valuesDropped: 0 });
    expect(fitDeadLetters(same, limit).deadLetters).to.equal(same);

    const { deadLetters, valuesDropped } = fitDeadLetters([small, large], limit);
    expect(valuesDropped).to.equal(1);
    expect(deadLetters[0]).to.equal(small);
    const fitted = deadLetters[1];
    expect(fitted.value).to.equal(null);
    expect(fitted.key!.toString()).to.equal('alice');
    const headers = headersText(fitted);
    expect(headers).to.include({ 'x-app': 'orders', 'shredder.error.class': 'RecordTooLarge', 'shredder.source': 'in/0/2', 'shredder.error.value-bytes': String(2 * 1024 * 1024) });
    expect(headers['shredder.error']).to.match(/^record too large once encrypted/);
    expect(headers['shredder.error.value-dropped']).to.equal(`the dead letter takes ${deadLetterBatchBytes(large)} bytes, more than the dead letter topic's max.message.bytes (${limit}): its value is dropped`);
    expect(await encodedBatchBytes(fitted)).to.be.at.most(limit);
  });

  it('keep only their dead-letter headers when even their key and own headers are too large', async () => {
    const dead = deadLetter({ ...message('3', 'v'), key: Buffer.alloc(20_000, 1), headers: { big: Buffer.alloc(20_000, 2) } } as unknown as KafkaMessage, 'in', 1, 'no subject: the record key is null');
    const [fitted] = fitDeadLetters([dead], 16 * 1024).deadLetters;
    expect(fitted.key).to.equal(null);
    expect(fitted.value).to.equal(null);
    const headers = headersText(fitted);
    expect(Object.keys(headers).sort()).to.deep.equal([
      'shredder.error', 'shredder.error.class', 'shredder.error.offset', 'shredder.error.partition', 'shredder.error.stage', 'shredder.error.topic', 'shredder.error.value-bytes', 'shredder.error.value-dropped', 'shredder.source',
    ]);
    expect(headers['shredder.error.value-dropped']).to.match(/its value, key and headers are dropped$/);
    expect(await encodedBatchBytes(fitted)).to.be.at.most(16 * 1024);
  });
});
