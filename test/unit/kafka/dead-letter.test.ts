// Dead letters: the contract's reason and source headers, the Kafka Connect-style context headers,
// a class for every reason the processors give, and SHREDDER_ERRORS_TOLERANCE=none.
import { expect } from 'chai';
import type { KafkaMessage } from 'kafkajs';
import { fieldMode, scanRecord } from '../../../src/fields/field-mode.js';
import { fieldEnvelope } from '../../../src/fields/field-envelope.js';
import { classifyReason, deadLetter } from '../../../src/kafka/dead-letter.js';
import { enforceErrorsTolerance, IntolerableRecordError } from '../../../src/processor/errors-tolerance.js';
import { parseEnvelope } from '../../../src/wire/envelope.js';

const message = (offset: string, value: string | null, key: string | null = 'alice'): KafkaMessage =>
  ({ key: key === null ? null : Buffer.from(key), value: value === null ? null : Buffer.from(value), offset, timestamp: '1700000000000', headers: { 'x-app': Buffer.from('orders') }, attributes: 0, size: 0 }) as unknown as KafkaMessage;

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
    const fields = fieldMode(['$.email'], '$.userId')!;
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
      ['authentication failed: the record was altered, forged, or moved to another subject', 'AuthenticationFailed', 'decrypt'],
      ['a decrypted field is not valid UTF-8 JSON text', 'InvalidPlaintext', 'decrypt'],
      ['shredded: the subject was forgotten, its key is destroyed', 'Shredded', 'decrypt'],
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
});
