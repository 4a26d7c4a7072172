// Configuration from the environment: defaults, validation, every problem at once, secrets unprinted.
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../../src/config/config.js';
import { connectionConfig } from '../../../src/kafka/client.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const valid = { KAFKA_BROKERS: 'localhost:9092', SHREDDER_MASTER_KEY: KEY };

function problems(env: Record<string, string>, command: 'encrypt' | 'decrypt' | 'forget' = 'encrypt'): string[] {
  try {
    loadConfig(command, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration', () => {
  it('applies the contract defaults', () => {
    const config = loadConfig('encrypt', valid);
    expect(config.routes).to.deep.equal([{ from: 'to-encrypt', to: 'encrypted-data' }]);
    expect(config).to.include({
      keysTopic: 'encryption-keys',
      dlqTopic: 'shredder-dlq',
      groupId: 'kafka-shredder-encrypt',
      masterKeyId: 1,
      stateDir: './shredder-state',
      algorithm: 1,
      erasureDeadlineMs: 86_400_000,
      plaintextRetentionMs: 86_400_000,
      onShredded: 'marker',
      httpPort: 9400,
      logLevel: 'info',
    });
    expect(config.kafka).to.deep.equal({ brokers: ['localhost:9092'], clientId: 'kafka-shredder', ssl: false, sasl: undefined });
    expect(loadConfig('decrypt', valid).routes).to.deep.equal([{ from: 'encrypted-data', to: 'decrypted-data' }]);
    expect(loadConfig('decrypt', valid).groupId).to.equal('kafka-shredder-decrypt');
  });

  it('reads routes, SASL, TLS and the master key file', () => {
    const config = loadConfig('encrypt', {
      ...valid,
      SHREDDER_ROUTES: 'a->b, c -> d',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'svc',
      KAFKA_SASL_PASSWORD: 'pw',
      SHREDDER_ALGORITHM: 'aes-256-gcm',
    });
    expect(config.routes).to.deep.equal([{ from: 'a', to: 'b' }, { from: 'c', to: 'd' }]);
    expect(config.kafka.ssl).to.equal(true);
    expect(config.kafka.sasl).to.deep.equal({ mechanism: 'scram-sha-512', username: 'svc', password: 'pw' });
    expect(config.algorithm).to.equal(2);
    // and they reach kafkajs as its ssl and sasl options
    expect(connectionConfig(config.kafka)).to.deep.equal({
      clientId: 'kafka-shredder',
      brokers: ['localhost:9092'],
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'pw' },
    });
    for (const mechanism of ['plain', 'scram-sha-256']) {
      const sasl = loadConfig('decrypt', { ...valid, KAFKA_SASL_MECHANISM: mechanism.toUpperCase(), KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }).kafka;
      expect(connectionConfig(sasl)).to.deep.include({ ssl: false, sasl: { mechanism, username: 'u', password: 'p' } });
    }
  });

  it('reports every problem at once, by variable name, without echoing secrets', () => {
    const secret = 'not-base64-but-very-secret!';
    const found = problems({
      SHREDDER_MASTER_KEY: secret,
      SHREDDER_ROUTES: 'a->b,broken',
      SHREDDER_ALGORITHM: 'rot13',
      SHREDDER_ERASURE_DEADLINE_MS: 'soon',
      SHREDDER_ON_SHREDDED: 'explode',
      SHREDDER_HTTP_PORT: '70000',
      KAFKA_SASL_MECHANISM: 'kerberos',
    });
    const names = ['KAFKA_BROKERS', 'SHREDDER_MASTER_KEY', 'SHREDDER_ROUTES', 'SHREDDER_ALGORITHM', 'SHREDDER_ERASURE_DEADLINE_MS', 'SHREDDER_ON_SHREDDED', 'SHREDDER_HTTP_PORT', 'KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'];
    for (const name of names) expect(found.some((p) => p.startsWith(name)), name).to.equal(true);
    expect(found.join('\n')).to.not.contain(secret);
  });

  it('rejects a master key that is not 32 bytes, and a master key id out of uint32 range', () => {
    expect(problems({ ...valid, SHREDDER_MASTER_KEY: Buffer.alloc(16).toString('base64') })).to.have.length(1);
    expect(problems({ ...valid, SHREDDER_MASTER_KEY_ID: '4294967296' })[0]).to.match(/^SHREDDER_MASTER_KEY_ID/);
  });

  it('does not need a master key to write a forget request', () => {
    expect(problems({ KAFKA_BROKERS: 'localhost:9092' }, 'forget')).to.deep.equal([]);
  });

  it('refuses a topic used twice across routes, keys and dead letters', () => {
    expect(problems({ ...valid, SHREDDER_ROUTES: 'a->b', SHREDDER_KEYS_TOPIC: 'a' })[0]).to.match(/^SHREDDER_KEYS_TOPIC/);
    expect(problems({ ...valid, SHREDDER_ROUTES: 'a->b,b->c' })[0]).to.match(/^SHREDDER_ROUTES/);
  });

  it('checks field mode: paths, a readable subject field, the shredded field value', () => {
    const config = loadConfig('decrypt', { ...valid, SHREDDER_FIELDS: '$.email, $.address.street,$.phones[*]', SHREDDER_SUBJECT_FIELD: '$.user.id', SHREDDER_SHREDDED_FIELD_VALUE: '"[erased]"' });
    expect(config.fields).to.deep.equal(['$.email', '$.address.street', '$.phones[*]']);
    expect(config).to.include({ subjectField: '$.user.id', shreddedFieldValue: '"[erased]"' });
    expect(loadConfig('decrypt', valid).shreddedFieldValue).to.equal('null');
    expect(problems({ ...valid, SHREDDER_FIELDS: '$.email,email' })[0]).to.match(/^SHREDDER_FIELDS: "email" is not a JSON path/);
    expect(problems({ ...valid, SHREDDER_SUBJECT_FIELD: '$.userId' })[0]).to.match(/^SHREDDER_SUBJECT_FIELD: needs SHREDDER_FIELDS/);
    expect(problems({ ...valid, SHREDDER_FIELDS: '$.user', SHREDDER_SUBJECT_FIELD: '$.user.id' })[0]).to.match(/inside the encrypted field \$\.user/);
    expect(problems({ ...valid, SHREDDER_FIELDS: '$.a', SHREDDER_SUBJECT_FIELD: '$.ids[*]' })[0]).to.match(/without \[\*\]/);
    expect(problems({ ...valid, SHREDDER_SHREDDED_FIELD_VALUE: 'erased' })[0]).to.match(/^SHREDDER_SHREDDED_FIELD_VALUE: expected JSON text/);
  });
});
