// TLS with the KAFKA_SSL_*_FILE variables against a broker listener that requires a client
// certificate (mutual TLS), and the one-line errors of a wrong connection setting: a wrong CA, no
// client certificate, TLS against the PLAINTEXT port and plaintext against the TLS port, nothing
// listening, the KRaft controller port. Its own local broker, with certificates made by openssl.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { DecryptingConsumer, type DecryptedMessage } from '../../src/decryptor/decrypting-consumer.js';
import { KafkaConnectionError } from '../../src/kafka/connection-errors.js';
import { LocalKafkaBroker } from '../../src/dev/local-broker/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { makeTestCertificates, type TestCertificates } from '../support/certificates.js';
import { startChildProcessor, type ChildProcessor } from '../support/child-processor.js';
import { decryptRecord, readKeysTable } from '../support/decrypt.js';
import { allRecords, eventually, produce, readExactly, uniqueName } from '../support/kafka.js';

/** How long a wrong setting may take to be reported (kafkajs' default retries are about 10 s). */
const FAIL_WITHIN_MS = 40_000;

interface Outcome {
  code: number | null;
  ms: number;
  output: string;
  /** The lines at error level or above. */
  errors: Record<string, unknown>[];
  /** Lines kafkajs logged at warn or above. */
  kafkajsWarnings: Record<string, unknown>[];
}

async function runToExit(child: ChildProcessor, started = Date.now()): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still running after ${FAIL_WITHIN_MS} ms:\n${child.output().slice(-3000)}`)), FAIL_WITHIN_MS)));
  try {
    const { code } = await Promise.race([child.exited, timeout]);
    return {
      code,
      ms: Date.now() - started,
      output: child.output(),
      errors: child.logs.filter((l) => Number(l.level) >= 50),
      kafkajsWarnings: child.logs.filter((l) => l.component === 'kafkajs' && Number(l.level) >= 40),
    };
  } finally {
    clearTimeout(timer);
    if (child.child.exitCode === null) child.child.kill('SIGKILL');
  }
}

describe('TLS and connection errors (a broker with a mutual-TLS listener)', function () {
  this.timeout(180_000);
  let certs: TestCertificates;
  let broker: LocalKafkaBroker;
  let masterKey: Buffer;
  let masterKeyFile: string;
  /** What no output may hold: the client's private key (its PEM body lines) and the master key. */
  let secrets: string[];

  before(async function () {
    this.timeout(300_000);
    certs = makeTestCertificates();
    broker = new LocalKafkaBroker({
      tls: { certificateFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile, clientAuth: 'required' },
    });
    await broker.start();
    masterKey = randomBytes(32);
    masterKeyFile = join(certs.dir, 'master-key');
    writeFileSync(masterKeyFile, `${masterKey.toString('base64')}\n`, { mode: 0o600 });
    const keyLines = readFileSync(certs.clientKeyFile, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
    secrets = [...keyLines, masterKey.toString('base64')];
  });

  after(async function () {
    this.timeout(60_000);
    await broker?.stop();
    certs?.remove();
  });

  /** An encryptor's environment over fresh topics, through the TLS listener with a client certificate. */
  function tlsEnv(overrides: Record<string, string | undefined> = {}): Record<string, string> {
    const env: Record<string, string | undefined> = {
      KAFKA_BROKERS: broker.tlsBrokers.join(','),
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: certs.caFile,
      KAFKA_SSL_CERT_FILE: certs.clientCertFile,
      KAFKA_SSL_KEY_FILE: certs.clientKeyFile,
      SHREDDER_ROUTES: `${uniqueName('plain')}->${uniqueName('encrypted')}`,
      SHREDDER_KEYS_TOPIC: uniqueName('keys'),
      SHREDDER_DLQ_TOPIC: uniqueName('dlq'),
      SHREDDER_GROUP_ID: uniqueName('encrypt'),
      SHREDDER_MASTER_KEY_FILE: masterKeyFile,
      SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-tls-state-')),
      SHREDDER_LOG_LEVEL: 'info',
      SHREDDER_HTTP_PORT: '0',
      ...overrides,
    };
    return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  }

  function expectClean(output: string): void {
    expect(output, 'a stack trace').not.to.include('    at ');
    for (const secret of secrets) expect(output.includes(secret), 'the output holds a secret').to.equal(false);
  }

  it('encrypts records produced through mutual TLS, with KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE; the library decrypts them with ssl: { ca, cert, key }', async () => {
    const env = tlsEnv();
    const [input, output] = env.SHREDDER_ROUTES.split('->');
    const child = startChildProcessor('encrypt', env);
    try {
      await child.waitForLog((l) => l.msg === 'encryptor started', 90_000);
      const kafka = new Kafka({
        clientId: 'tls-test',
        brokers: broker.tlsBrokers,
        ssl: { ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile) },
        logLevel: logLevel.NOTHING,
      });
      const records = Array.from({ length: 12 }, (_, i) => ({ key: `user-${i % 4}`, value: `over TLS ${i}` }));
      await produce(kafka, input, records);
      const encrypted = await readExactly(kafka, output, records.length);
      const table = await readKeysTable(kafka, env.SHREDDER_KEYS_TOPIC);
      const opened: string[] = [];
      for (const [partition, messages] of encrypted) {
        for (const message of messages) {
          expect(message.value!.toString()).not.to.include('over TLS');
          opened.push(String(await decryptRecord(message, partition, table, masterKey)));
        }
      }
      expect(opened.sort()).to.deep.equal(records.map((r) => r.value).sort());
      expect(allRecords(encrypted).map((m) => m.key!.toString()).sort()).to.deep.equal(records.map((r) => r.key).sort());

      const consumer = new DecryptingConsumer({
        brokers: broker.tlsBrokers,
        ssl: { ca: readFileSync(certs.caFile, 'utf8'), cert: readFileSync(certs.clientCertFile, 'utf8'), key: readFileSync(certs.clientKeyFile, 'utf8') },
        groupId: uniqueName('app'),
        topics: [output],
        masterKey,
        keysTopic: env.SHREDDER_KEYS_TOPIC,
        dlqTopic: env.SHREDDER_DLQ_TOPIC,
        stateDir: mkdtempSync(join(tmpdir(), 'shredder-tls-app-')),
        logger: createLogger('silent'),
      });
      const received: DecryptedMessage[] = [];
      await consumer.run({ eachMessage: (message) => void received.push(message) });
      try {
        await eventually('the library consumer to decrypt every record', async () => received.length >= records.length, 60_000);
        expect(received.map((m) => `${m.status} ${m.value}`).sort()).to.deep.equal(records.map((r) => `ok ${r.value}`).sort());
      } finally {
        await consumer.stop();
      }
    } finally {
      if (child.child.exitCode === null) child.child.kill('SIGTERM');
      const { code } = await child.exited;
      expect(code, child.output().slice(-2000)).to.equal(0);
    }
    expect(child.logs.filter((l) => Number(l.level) >= 40)).to.deep.equal([]);
    expectClean(child.output());
  });

  it('reports each wrong connection setting in one error line naming the variable, and exits 1 in bounded time', async () => {
    const cases: { what: string; command?: string; env: Record<string, string | undefined>; names: string; says: RegExp }[] = [
      { what: 'a CA that did not sign the broker certificate', env: { KAFKA_SSL_CA_FILE: certs.otherCaFile }, names: 'KAFKA_SSL_CA_FILE', says: /not trusted \(unable to verify the first certificate\)/ },
      { what: 'no client certificate for a mutual-TLS listener', env: { KAFKA_SSL_CERT_FILE: undefined, KAFKA_SSL_KEY_FILE: undefined }, names: 'KAFKA_SSL_CERT_FILE', says: /requires a client certificate/ },
      { what: 'KAFKA_SSL=true against the PLAINTEXT port', env: { KAFKA_BROKERS: broker.brokers[0] }, names: 'KAFKA_SSL', says: /PLAINTEXT listener/ },
      {
        what: 'KAFKA_SSL=false against the TLS port',
        env: { KAFKA_SSL: 'false', KAFKA_SSL_CA_FILE: undefined, KAFKA_SSL_CERT_FILE: undefined, KAFKA_SSL_KEY_FILE: undefined },
        names: 'KAFKA_SSL',
        says: /closed the connection at once: it is probably a TLS listener \(set KAFKA_SSL=true\)/,
      },
      { what: 'nothing listening', env: { KAFKA_BROKERS: '127.0.0.1:1' }, names: 'KAFKA_BROKERS', says: /cannot reach any broker in KAFKA_BROKERS \(127\.0\.0\.1:1\): connection refused/ },
      {
        what: 'the KRaft controller port',
        env: { KAFKA_BROKERS: broker.controllerAddress, KAFKA_SSL: 'false', KAFKA_SSL_CA_FILE: undefined, KAFKA_SSL_CERT_FILE: undefined, KAFKA_SSL_KEY_FILE: undefined },
        names: 'KAFKA_BROKERS',
        says: /controller listener/,
      },
      { what: 'nothing listening (decrypt)', command: 'decrypt', env: { KAFKA_BROKERS: '127.0.0.1:1', SHREDDER_ROUTES: `${uniqueName('encrypted')}->${uniqueName('decrypted')}` }, names: 'KAFKA_BROKERS', says: /cannot reach any broker/ },
    ];
    const outcomes = await Promise.all(cases.map(({ command = 'encrypt', env }) => runToExit(startChildProcessor(command, tlsEnv(env)))));
    for (const [i, outcome] of outcomes.entries()) {
      const { what, command = 'encrypt', names, says } = cases[i];
      const context = `${what}:\n${outcome.output.slice(-3000)}`;
      expect(outcome.code, context).to.equal(1);
      expect(outcome.ms, context).to.be.below(FAIL_WITHIN_MS);
      expect(outcome.errors, context).to.have.length(1);
      const [line] = outcome.errors;
      expect(line.msg, context).to.equal(`${command} failed to start`);
      expect(line.error, context).to.be.a('string').and.include(names).and.match(says);
      expect((line.settings as string[])[0], context).to.equal(names);
      expect(outcome.kafkajsWarnings, context).to.deep.equal([]);
      expectClean(outcome.output);
      // every line is a JSON log line
      expect(outcome.output.split('\n').filter((l) => l.trim() && !l.startsWith('{')), context).to.deep.equal([]);
    }
  });

  it('the library\'s DecryptingConsumer: run() rejects with one line naming the option to check, and can run again', async () => {
    const consumerWith = (options: { brokers: string[]; ssl?: { ca: string } }) =>
      new DecryptingConsumer({
        ...options,
        groupId: uniqueName('app'),
        topics: [uniqueName('encrypted')],
        masterKey,
        stateDir: mkdtempSync(join(tmpdir(), 'shredder-tls-app-')),
        logger: createLogger('silent'),
      });
    const cases: { what: string; consumer: DecryptingConsumer; names: string; says: RegExp }[] = [
      { what: 'nothing listening', consumer: consumerWith({ brokers: ['127.0.0.1:1'] }), names: 'brokers', says: /^cannot reach any broker in brokers \(127\.0\.0\.1:1\): connection refused$/ },
      { what: 'no ssl against the TLS port', consumer: consumerWith({ brokers: broker.tlsBrokers }), names: 'ssl', says: /^ssl: false: .* closed the connection at once: it is probably a TLS listener \(set ssl: true\)/ },
      { what: 'a CA that did not sign the broker certificate', consumer: consumerWith({ brokers: broker.tlsBrokers, ssl: { ca: readFileSync(certs.otherCaFile, 'utf8') } }), names: 'ssl.ca', says: /^ssl\.ca: the certificate of .* is not trusted/ },
    ];
    const started = Date.now();
    const errors = await Promise.all(cases.map(({ consumer }) => consumer.run({ eachMessage: () => {} }).then(() => undefined, (err: unknown) => err)));
    for (const [i, { what, consumer, names, says }] of cases.entries()) {
      const error = errors[i];
      expect(error, what).to.be.instanceOf(KafkaConnectionError);
      const connection = error as KafkaConnectionError;
      expect(connection.message, what).to.match(says);
      expect(connection.message, what).not.to.match(/KAFKA_|SHREDDER_/);
      expect(connection.settings[0], what).to.equal(names);
      expect(connection.cause, `${what}: kafkajs' error as the cause`).to.be.instanceOf(Error);
      expect(Date.now() - started, what).to.be.below(FAIL_WITHIN_MS);
      expect(consumer.readiness().ready, what).to.equal(false);
      if (i > 0) continue;
      // nothing is left running: the same consumer may run again (and fails the same way)
      const again = await consumer.run({ eachMessage: () => {} }).then(() => undefined, (err: unknown) => err);
      expect(again, `${what}, again`).to.be.instanceOf(KafkaConnectionError);
    }
  });

  it('`kafka-shredder forget` against an unreachable broker prints one line naming KAFKA_BROKERS and exits 1', async () => {
    const env = tlsEnv({ KAFKA_BROKERS: '127.0.0.1:1' });
    const outcome = await runToExit(startChildProcessor('forget', env, ['user-1']));
    expect(outcome.code, outcome.output).to.equal(1);
    expect(outcome.output.trim().split('\n'), outcome.output).to.deep.equal([
      'kafka-shredder forget: cannot reach any broker in KAFKA_BROKERS (127.0.0.1:1): connection refused',
    ]);
    expectClean(outcome.output);
  });
});
