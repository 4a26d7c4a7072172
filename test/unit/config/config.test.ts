// Configuration from the environment: defaults, validation, every problem at once, secrets unprinted.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config/config.js';
import { editDistance } from '../../../src/config/unknown-variables.js';
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
      stateDir: './shredder-state',
      algorithm: 1,
      erasureDeadlineMs: 86_400_000,
      plaintextRetentionMs: 86_400_000,
      onShredded: 'marker',
      httpPort: 9400,
      logLevel: 'info',
    });
    expect(config.kafka).to.deep.equal({ brokers: ['localhost:9092'], clientId: 'kafka-shredder', ssl: false, tls: undefined, sasl: undefined });
    expect(config).to.include({ errorsTolerance: 'all', outputCompression: 'none', taskOpenTimeoutMs: 60_000, rewrapKeysPerSecond: 1000, keyCacheSubjects: 100_000 });
    expect(config.keys).to.deep.equal({ provider: 'local', masterKeys: [{ id: 1, key: new Uint8Array(Buffer.from(KEY, 'base64')) }], currentId: 1 });
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

  it('reads the key cache bound, and names SHREDDER_KEY_CACHE_SUBJECTS when it is not a positive integer', () => {
    expect(loadConfig('encrypt', { ...valid, SHREDDER_KEY_CACHE_SUBJECTS: '20000' }).keyCacheSubjects).to.equal(20_000);
    for (const bad of ['0', '-5', '1.5', '100k']) {
      expect(problems({ ...valid, SHREDDER_KEY_CACHE_SUBJECTS: bad }), bad).to.deep.equal([`SHREDDER_KEY_CACHE_SUBJECTS: expected an integer from 1 to 100000000, got ${JSON.stringify(bad)}`]);
    }
  });

  it('reads SHREDDER_RECORD_KEYS (default subject), with or without a subject field', () => {
    expect(loadConfig('encrypt', valid).recordKeys).to.equal('subject');
    expect(loadConfig('encrypt', { ...valid, SHREDDER_RECORD_KEYS: 'Pseudonym' }).recordKeys).to.equal('pseudonym');
    expect(problems({ ...valid, SHREDDER_RECORD_KEYS: 'hashed' })).to.deep.equal(['SHREDDER_RECORD_KEYS: expected subject or pseudonym, got "hashed"']);
    expect(problems({ ...valid, SHREDDER_RECORD_KEYS: 'pseudonym', SHREDDER_FIELDS: '$.email', SHREDDER_SUBJECT_FIELD: '$.user' })).to.deep.equal([]);
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

  it('refuses a misspelled or unknown variable of ours, naming the closest known one', () => {
    const found = problems({ ...valid, SHREDER_ROUTES: 'a->b', SHREDDER_ROTUES: 'a->b', SHREDDER_SOMETHING: 'x', KAFKA_BROKER: 'h:1', shredder_routes: 'a->b' });
    expect(found).to.have.length(5);
    expect(found.find((p) => p.startsWith('SHREDER_ROUTES:'))).to.contain('did you mean SHREDDER_ROUTES?');
    expect(found.find((p) => p.startsWith('SHREDDER_ROTUES:'))).to.contain('did you mean SHREDDER_ROUTES?');
    expect(found.find((p) => p.startsWith('KAFKA_BROKER:'))).to.contain('did you mean KAFKA_BROKERS?');
    expect(found.find((p) => p.startsWith('shredder_routes:'))).to.contain('did you mean SHREDDER_ROUTES?');
    expect(found.find((p) => p.startsWith('SHREDDER_SOMETHING:'))).to.match(/not a kafka-shredder variable; .*SHREDDER_/);
    // a variable far from all of ours, without our prefixes, is none of our business
    expect(problems({ ...valid, PATH: '/bin', HOME: '/root', KAFKAJS_NO_PARTITIONER_WARNING: '1', NODE_OPTIONS: '' })).to.deep.equal([]);
  });

  it('ignores what Kubernetes service links and Kafka\'s launcher scripts put into the environment, but not a typo that looks like them', () => {
    const links = {
      KAFKA_SERVICE_HOST: '10.0.0.12',
      KAFKA_SERVICE_PORT: '9092',
      KAFKA_SERVICE_PORT_CLIENT: '9092',
      KAFKA_PORT: 'tcp://10.0.0.12:9092',
      KAFKA_PORT_9092_TCP: 'tcp://10.0.0.12:9092',
      KAFKA_PORT_9092_TCP_PROTO: 'tcp',
      KAFKA_PORT_9092_TCP_PORT: '9092',
      KAFKA_PORT_9092_TCP_ADDR: '10.0.0.12',
      KAFKA_HEADLESS_SERVICE_HOST: '10.0.0.13',
      SHREDDER_METRICS_SERVICE_HOST: '10.0.0.14',
      KAFKA_HEAP_OPTS: '-Xmx1g',
      KAFKA_OPTS: '',
    };
    expect(problems({ ...valid, ...links })).to.deep.equal([]);
    expect(problems({ ...valid, SHREDDER_HTTPS_PORT: '9400' })[0]).to.match(/^SHREDDER_HTTPS_PORT: .*did you mean SHREDDER_HTTP_PORT\?/);
  });

  it('counts one edit for an insertion, a deletion, a substitution or two swapped neighbours', () => {
    expect(editDistance('SHREDDER_ROUTES', 'SHREDDER_ROUTES')).to.equal(0);
    expect(editDistance('SHREDER_ROUTES', 'SHREDDER_ROUTES')).to.equal(1);
    expect(editDistance('SHREDDER_ROTUES', 'SHREDDER_ROUTES')).to.equal(1);
    expect(editDistance('SHREDDER_ROUTEZ', 'SHREDDER_ROUTES')).to.equal(1);
    expect(editDistance('SHREDDER_ROUTESS', 'SHREDDER_ROUTES')).to.equal(1);
    expect(editDistance('KAFKA_SSL', 'KAFKA_SASL')).to.equal(1);
    expect(editDistance('', 'abc')).to.equal(3);
  });

  it('reads TLS files and the SASL password file, and names what is missing or wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shredder-config-'));
    const pem = (label: string) => `-----BEGIN ${label}-----\nMIIB\n-----END ${label}-----\n`;
    writeFileSync(join(dir, 'ca.pem'), pem('CERTIFICATE'));
    writeFileSync(join(dir, 'cert.pem'), pem('CERTIFICATE'));
    writeFileSync(join(dir, 'key.pem'), pem('PRIVATE KEY'));
    writeFileSync(join(dir, 'password'), 's3cret-pw\n');
    writeFileSync(join(dir, 'not-pem'), 'hello');
    const files = { KAFKA_SSL_CA_FILE: join(dir, 'ca.pem'), KAFKA_SSL_CERT_FILE: join(dir, 'cert.pem'), KAFKA_SSL_KEY_FILE: join(dir, 'key.pem') };
    const config = loadConfig('encrypt', { ...valid, KAFKA_SSL: 'true', ...files, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD_FILE: join(dir, 'password') });
    expect(config.kafka.tls!.ca!.toString()).to.equal(pem('CERTIFICATE'));
    expect(config.kafka.tls!.key!.toString()).to.equal(pem('PRIVATE KEY'));
    expect(config.kafka.sasl).to.deep.equal({ mechanism: 'plain', username: 'svc', password: 's3cret-pw' });

    expect(problems({ ...valid, ...files })).to.have.length(3); // each: KAFKA_SSL is not true
    expect(problems({ ...valid, ...files })[0]).to.match(/KAFKA_SSL is not true/);
    expect(problems({ ...valid, KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: join(dir, 'missing.pem') })).to.deep.equal([`KAFKA_SSL_CA_FILE: cannot read ${join(dir, 'missing.pem')}: ENOENT`]);
    expect(problems({ ...valid, KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: join(dir, 'not-pem') })[0]).to.match(/^KAFKA_SSL_CA_FILE: .* is not a PEM file/);
    expect(problems({ ...valid, KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: files.KAFKA_SSL_CERT_FILE })[0]).to.match(/^KAFKA_SSL_KEY_FILE: required with KAFKA_SSL_CERT_FILE/);
    expect(problems({ ...valid, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD: 'x', KAFKA_SASL_PASSWORD_FILE: join(dir, 'password') })[0]).to.match(/set one of them, not both/);
    expect(problems({ ...valid, KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD: 'x' })[0]).to.match(/^KAFKA_SASL_MECHANISM: required/);
    // neither a password nor key material is ever echoed
    const all = problems({ ...valid, ...files, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD: 'x', KAFKA_SASL_PASSWORD_FILE: join(dir, 'password') }).join('\n');
    expect(all).to.not.contain('s3cret-pw').and.not.contain('MIIB');
  });

  it('reads SHREDDER_ERRORS_TOLERANCE, KAFKA_COMPRESSION and SHREDDER_TASK_OPEN_TIMEOUT_MS', () => {
    expect(loadConfig('decrypt', { ...valid, SHREDDER_ERRORS_TOLERANCE: 'NONE', KAFKA_COMPRESSION: 'zstd', SHREDDER_TASK_OPEN_TIMEOUT_MS: '5000' })).to.include({
      errorsTolerance: 'none',
      outputCompression: 'zstd',
      taskOpenTimeoutMs: 5000,
    });
    for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) expect(loadConfig('decrypt', { ...valid, KAFKA_COMPRESSION: codec }).outputCompression).to.equal(codec);
    expect(problems({ ...valid, SHREDDER_ERRORS_TOLERANCE: 'some' })[0]).to.match(/^SHREDDER_ERRORS_TOLERANCE: expected all or none/);
    expect(problems({ ...valid, KAFKA_COMPRESSION: 'brotli' })[0]).to.match(/^KAFKA_COMPRESSION: expected none, gzip, snappy, lz4, zstd/);
    expect(problems({ ...valid, SHREDDER_TASK_OPEN_TIMEOUT_MS: '10' })[0]).to.match(/^SHREDDER_TASK_OPEN_TIMEOUT_MS/);
  });

  it('reads a keyring of master keys by id, and the PKCS#11 provider\'s settings', () => {
    const one = Buffer.alloc(32, 1).toString('base64');
    const two = Buffer.alloc(32, 2).toString('base64');
    const ring = loadConfig('encrypt', { KAFKA_BROKERS: 'localhost:9092', SHREDDER_MASTER_KEYS: `1:${one}, 2:${two}`, SHREDDER_MASTER_KEY_ID: '2' }).keys;
    expect(ring).to.deep.equal({ provider: 'local', currentId: 2, masterKeys: [{ id: 1, key: new Uint8Array(Buffer.alloc(32, 1)) }, { id: 2, key: new Uint8Array(Buffer.alloc(32, 2)) }] });
    const dir = mkdtempSync(join(tmpdir(), 'shredder-keyring-'));
    writeFileSync(join(dir, 'keys'), `# rotated 2026-12\n1:${one}\n\n7:${two}\n`);
    writeFileSync(join(dir, 'pin'), '1234\n');
    expect(loadConfig('decrypt', { KAFKA_BROKERS: 'localhost:9092', SHREDDER_MASTER_KEYS_FILE: join(dir, 'keys'), SHREDDER_MASTER_KEY_ID: '7' }).keys).to.deep.include({ currentId: 7 });
    // the current id must be in the keyring; entries must be id:base64 of 32 bytes; never both forms
    expect(problems({ KAFKA_BROKERS: 'h:1', SHREDDER_MASTER_KEYS: `1:${one}` , SHREDDER_MASTER_KEY_ID: '2' })[0]).to.match(/^SHREDDER_MASTER_KEY_ID: master key id 2 is not in SHREDDER_MASTER_KEYS \(ids 1\)/);
    expect(problems({ KAFKA_BROKERS: 'h:1', SHREDDER_MASTER_KEYS: `1:${one},x:${two}` })[0]).to.match(/^SHREDDER_MASTER_KEYS: entry 2 is not id:base64/);
    expect(problems({ KAFKA_BROKERS: 'h:1', SHREDDER_MASTER_KEYS: `1:${one},1:${two}` })[0]).to.match(/master key id 1 appears twice/);
    expect(problems({ KAFKA_BROKERS: 'h:1', SHREDDER_MASTER_KEYS: '1:c2hvcnQ=' })[0]).to.match(/^SHREDDER_MASTER_KEYS: master key id 1: expected 32 bytes/);
    expect(problems({ KAFKA_BROKERS: 'h:1', SHREDDER_MASTER_KEY: one, SHREDDER_MASTER_KEYS: `1:${one}` })[0]).to.match(/set one of them, not both/);
    expect(problems({ KAFKA_BROKERS: 'h:1', SHREDDER_MASTER_KEYS: `1:${one},2:${two}` }).join('\n')).to.not.contain(one.slice(0, 20));

    const pkcs11 = loadConfig('encrypt', {
      KAFKA_BROKERS: 'localhost:9092',
      SHREDDER_KEY_PROVIDER: 'pkcs11',
      SHREDDER_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
      SHREDDER_PKCS11_TOKEN_LABEL: 'shredder',
      SHREDDER_PKCS11_PIN_FILE: join(dir, 'pin'),
      SHREDDER_MASTER_KEY_ID: '3',
    }).keys;
    expect(pkcs11).to.deep.equal({ provider: 'pkcs11', modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'shredder', slot: undefined, pin: '1234', keyLabelPrefix: 'kafka-shredder-master-key-', currentId: 3 });
    const missing = problems({ KAFKA_BROKERS: 'h:1', SHREDDER_KEY_PROVIDER: 'pkcs11', SHREDDER_MASTER_KEY: one });
    for (const name of ['SHREDDER_MASTER_KEY:', 'SHREDDER_PKCS11_MODULE:', 'SHREDDER_PKCS11_TOKEN_LABEL or SHREDDER_PKCS11_SLOT:', 'SHREDDER_PKCS11_PIN or SHREDDER_PKCS11_PIN_FILE:']) {
      expect(missing.some((p) => p.startsWith(name)), name).to.equal(true);
    }
    expect(problems({ ...valid, SHREDDER_PKCS11_PIN: '1234' })[0]).to.match(/^SHREDDER_PKCS11_PIN: used only with SHREDDER_KEY_PROVIDER=pkcs11/);
    expect(problems({ ...valid, SHREDDER_KEY_PROVIDER: 'vault' })[0]).to.match(/^SHREDDER_KEY_PROVIDER: expected local or pkcs11/);
    expect(problems({ KAFKA_BROKERS: 'h:1', SHREDDER_KEY_PROVIDER: 'pkcs11', SHREDDER_PKCS11_MODULE: 'm', SHREDDER_PKCS11_SLOT: '0', SHREDDER_PKCS11_PIN: 's3cret' }).join('\n')).to.not.contain('s3cret');
  });
});
