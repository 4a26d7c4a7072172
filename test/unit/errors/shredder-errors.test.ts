// The error taxonomy: each class maps to one outcome and one exit code, and the errors the product
// raises belong to the class their meaning says.
import { expect } from 'chai';
import { ConfigError } from '../../../src/config/config.js';
import { ConfigurationError, exitCodeFor, FatalError, faultSourceOf, isRecordError, outcomeOf, RecordError, TransientError } from '../../../src/errors/shredder-errors.js';
import { JsonPathError } from '../../../src/fields/json-path.js';
import { JsonValueError } from '../../../src/fields/json-fields.js';
import { KafkaConnectionError } from '../../../src/kafka/connection-errors.js';
import { TopicLayoutError } from '../../../src/kafka/topics.js';
import { Pkcs11MasterKeyError } from '../../../src/keys/pkcs11-master-keys.js';
import { IntolerableRecordError } from '../../../src/processor/errors-tolerance.js';
import { EnvelopeError } from '../../../src/wire/envelope.js';
import { WrappedKeyError } from '../../../src/wire/wrapped-key.js';

describe('error taxonomy', () => {
  const cases: { error: unknown; outcome: string; exitCode: number; retriable: boolean }[] = [
    { error: new RecordError('x'), outcome: 'dead-letter', exitCode: 1, retriable: false },
    { error: new TransientError('master-key', 'x'), outcome: 'retry', exitCode: 1, retriable: true },
    { error: new ConfigurationError('x'), outcome: 'exit-configuration', exitCode: 2, retriable: false },
    { error: new FatalError('x'), outcome: 'exit-fatal', exitCode: 1, retriable: false },
    // errors from outside the family: retried while processing, a failure when a command ends with them
    { error: new Error('kafkajs or rocksdb'), outcome: 'retry', exitCode: 1, retriable: true },
    { error: 'a string', outcome: 'retry', exitCode: 1, retriable: true },
  ];
  for (const { error, outcome, exitCode, retriable } of cases) {
    it(`${error instanceof Error ? error.constructor.name : typeof error}: ${outcome}, exit ${exitCode}`, () => {
      expect(outcomeOf(error)).to.equal(outcome);
      expect(exitCodeFor(error)).to.equal(exitCode);
      if (error instanceof Error && 'retriable' in error) expect((error as { retriable: boolean }).retriable).to.equal(retriable);
    });
  }

  it('exit 0 only without an error', () => {
    expect(exitCodeFor(undefined)).to.equal(0);
  });

  it('classifies the product\'s own errors by what they mean', () => {
    const record = [new WrappedKeyError('forged'), new EnvelopeError('short'), new JsonValueError('not JSON')];
    const configuration = [new ConfigError(['SHREDDER_ROUTES is not set']), new TopicLayoutError('partition counts differ'), new JsonPathError('bad path'), new Pkcs11MasterKeyError('no token')];
    const fatal = [new IntolerableRecordError('stop'), new KafkaConnectionError({ message: 'cannot reach', settings: ['brokers'] }, new Error('ECONNREFUSED'))];
    for (const error of record) {
      expect(isRecordError(error), error.name).to.equal(true);
      expect(outcomeOf(error), error.name).to.equal('dead-letter');
    }
    for (const error of configuration) expect(exitCodeFor(error), error.name).to.equal(2);
    for (const error of fatal) {
      expect(outcomeOf(error), error.name).to.equal('exit-fatal');
      expect(exitCodeFor(error), error.name).to.equal(1);
    }
    expect(isRecordError(new TransientError('rocksdb', 'EACCES'))).to.equal(false);
  });

  it('names where an infrastructure fault came from', () => {
    const kafkajs = Object.assign(new Error('The coordinator is not available'), { name: 'KafkaJSProtocolError' });
    expect(faultSourceOf(new TransientError('master-key', 'CKR_DEVICE_ERROR'))).to.equal('master-key');
    expect(faultSourceOf(kafkajs)).to.equal('kafka');
    expect(faultSourceOf(new Error('IO error: /state/keys-0/000012.log: Permission denied'))).to.equal('rocksdb');
    expect(faultSourceOf(new Error('something else'))).to.equal('processor');
  });
});
