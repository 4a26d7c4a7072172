// What kafkajs is given from KAFKA_SSL_*_FILE and KAFKA_SASL_PASSWORD_FILE: the files' contents as
// tls.connect's ca, cert and key, the password without the file's trailing newline.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/config.js';
import { connectionConfig } from '../../../src/kafka/client.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const valid = { KAFKA_BROKERS: 'kafka:9093', SHREDDER_MASTER_KEY: KEY };

describe('connectionConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shredder-client-test-'));
  const file = (name: string, contents: string) => {
    const path = join(dir, name);
    writeFileSync(path, contents);
    return path;
  };
  const ca = '-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n';
  const cert = '-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n';
  const key = '-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n';

  it('passes the CA bundle, client certificate and key files to kafkajs as tls.connect options', () => {
    const config = loadConfig('encrypt', {
      ...valid,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: file('ca.pem', ca),
      KAFKA_SSL_CERT_FILE: file('client.pem', cert),
      KAFKA_SSL_KEY_FILE: file('client.key', key),
    });
    const { ssl } = connectionConfig(config.kafka);
    expect(ssl).to.deep.equal({ ca: Buffer.from(ca), cert: Buffer.from(cert), key: Buffer.from(key) });
  });

  it('passes only the files given (a CA bundle alone), and true with KAFKA_SSL=true alone', () => {
    const caOnly = loadConfig('encrypt', { ...valid, KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: file('ca-only.pem', ca) });
    expect(connectionConfig(caOnly.kafka).ssl).to.deep.equal({ ca: Buffer.from(ca) });
    expect(connectionConfig(loadConfig('encrypt', { ...valid, KAFKA_SSL: 'true' }).kafka).ssl).to.equal(true);
    expect(connectionConfig(loadConfig('encrypt', valid).kafka).ssl).to.equal(false);
  });

  it('takes library TLS options as tls.connect does (strings too)', () => {
    const { ssl } = connectionConfig({ brokers: ['kafka:9093'], clientId: 'app', ssl: true, tls: { ca: [ca], cert, key } });
    expect(ssl).to.deep.equal({ ca: [ca], cert, key });
  });

  it('gives kafkajs the SASL password from KAFKA_SASL_PASSWORD_FILE, without its trailing newline', () => {
    const config = loadConfig('forget', {
      ...valid,
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'scram-sha-256',
      KAFKA_SASL_USERNAME: 'shredder',
      KAFKA_SASL_PASSWORD_FILE: file('sasl-password', 'p4ss w0rd\n'),
    });
    expect(connectionConfig(config.kafka)).to.deep.equal({
      clientId: 'kafka-shredder',
      brokers: ['kafka:9093'],
      ssl: true,
      sasl: { mechanism: 'scram-sha-256', username: 'shredder', password: 'p4ss w0rd' },
    });
  });
});
