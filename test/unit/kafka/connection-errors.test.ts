// The one-line explanation of a first contact with the cluster that failed, for each error shape
// kafkajs 2.2.4 raised against a real broker (tls.test.ts provokes most of them; the SASL, expiry and
// DNS shapes are kafkajs' and Node's own), and which kafkajs log lines are part of connecting.
import { expect } from 'chai';
import { createRequire } from 'node:module';
import { explainConnectionError, connectionErrorMessage, inLibraryTerms, isConnectingLog } from '../../../src/kafka/connection-errors.js';
import type { ConnectionSettings } from '../../../src/kafka/client.js';

// (kafkajs' error classes are spread into its CommonJS exports, which ESM named imports do not see)
const errors = createRequire(import.meta.url)('kafkajs');

const plain: ConnectionSettings = { brokers: ['127.0.0.1:9092'], clientId: 'c', ssl: false };
const tls: ConnectionSettings = { ...plain, brokers: ['127.0.0.1:9093'], ssl: true };
const withCa: ConnectionSettings = { ...tls, tls: { ca: Buffer.from('ca') } };
const mutual: ConnectionSettings = { ...tls, tls: { ca: Buffer.from('ca'), cert: Buffer.from('cert'), key: Buffer.from('key') } };
const sasl: ConnectionSettings = { ...tls, sasl: { mechanism: 'scram-sha-512', username: 'shredder', password: 'hunter2-secret' } };

/** What kafkajs' seed broker connect rejects with once its retries are spent. */
function retriesExceeded(cause: Error): Error {
  return new errors.KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 5, retryTime: 4000 });
}

/** A Node socket/TLS error as kafkajs' connection wraps it. */
function connectionError(message: string, code: string | undefined, broker: string): Error {
  return retriesExceeded(new errors.KafkaJSConnectionError(`Connection error: ${message}`, { broker, code }));
}

describe('explainConnectionError', () => {
  const cases: { what: string; settings: ConnectionSettings; error: () => Error; variable: string; message: string }[] = [
    {
      what: 'nothing listens',
      settings: plain,
      error: () => connectionError('connect ECONNREFUSED 127.0.0.1:9092', 'ECONNREFUSED', '127.0.0.1:9092'),
      variable: 'KAFKA_BROKERS',
      message: 'cannot reach any broker in KAFKA_BROKERS (127.0.0.1:9092): connection refused',
    },
    {
      what: 'the host name does not resolve',
      settings: { ...plain, brokers: ['no-such-host.invalid:9092'] },
      error: () => connectionError('getaddrinfo ENOTFOUND no-such-host.invalid', 'ENOTFOUND', 'no-such-host.invalid:9092'),
      variable: 'KAFKA_BROKERS',
      message: 'cannot reach any broker in KAFKA_BROKERS (no-such-host.invalid:9092): host not found: getaddrinfo ENOTFOUND no-such-host.invalid',
    },
    {
      what: 'DNS is down',
      settings: { ...plain, brokers: ['kafka:9092'] },
      error: () => connectionError('getaddrinfo EAI_AGAIN kafka', 'EAI_AGAIN', 'kafka:9092'),
      variable: 'KAFKA_BROKERS',
      message: 'cannot reach any broker in KAFKA_BROKERS (kafka:9092): host name lookup failed (DNS), try again later: getaddrinfo EAI_AGAIN kafka',
    },
    {
      what: 'the connection times out',
      settings: plain,
      error: () => retriesExceeded(new errors.KafkaJSConnectionError('Connection timeout', { broker: '127.0.0.1:9092' })),
      variable: 'KAFKA_BROKERS',
      message: 'cannot reach any broker in KAFKA_BROKERS (127.0.0.1:9092): connection timed out',
    },
    {
      what: 'the cluster advertises an address the client cannot reach',
      settings: plain,
      error: () => connectionError('getaddrinfo ENOTFOUND kafka-0.internal', 'ENOTFOUND', 'kafka-0.internal:9092'),
      variable: 'KAFKA_BROKERS',
      message:
        "cannot reach the broker kafka-0.internal:9092 (advertised by the cluster; KAFKA_BROKERS (127.0.0.1:9092) answered): host not found: getaddrinfo ENOTFOUND kafka-0.internal; check the brokers' advertised.listeners (what the cluster tells clients to connect to)",
    },
    {
      what: 'an untrusted certificate, no CA file',
      settings: tls,
      error: () => connectionError('unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', '127.0.0.1:9093'),
      variable: 'KAFKA_SSL_CA_FILE',
      message: 'KAFKA_SSL_CA_FILE: the certificate of the broker at 127.0.0.1:9093 is not trusted (unable to verify the first certificate): set KAFKA_SSL_CA_FILE to the CA bundle that signed it',
    },
    {
      what: 'a self-signed chain the CA file does not hold',
      settings: withCa,
      error: () => connectionError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN', '127.0.0.1:9093'),
      variable: 'KAFKA_SSL_CA_FILE',
      message: 'KAFKA_SSL_CA_FILE: the certificate of the broker at 127.0.0.1:9093 is not trusted (self-signed certificate in certificate chain): KAFKA_SSL_CA_FILE does not hold the CA that signed it',
    },
    {
      what: 'an expired broker certificate',
      settings: withCa,
      error: () => connectionError('certificate has expired', 'CERT_HAS_EXPIRED', '127.0.0.1:9093'),
      variable: 'KAFKA_SSL',
      message: 'KAFKA_SSL: the certificate of the broker at 127.0.0.1:9093 is not valid now (certificate has expired): the broker needs a current certificate',
    },
    {
      what: 'a certificate for another host name',
      settings: withCa,
      error: () => connectionError("Hostname/IP does not match certificate's altnames: Host: kafka.example.com. is not in the cert's altnames: IP Address:127.0.0.1, DNS:localhost", 'ERR_TLS_CERT_ALTNAME_INVALID', '127.0.0.1:9093'),
      variable: 'KAFKA_BROKERS',
      message:
        "KAFKA_BROKERS: the certificate of the broker at 127.0.0.1:9093 is not for that host name (Hostname/IP does not match certificate's altnames: Host: kafka.example.com. is not in the cert's altnames: IP Address:127.0.0.1, DNS:localhost): name the brokers in KAFKA_BROKERS as their certificates do",
    },
    {
      what: 'no client certificate for a mutual-TLS listener (TLS 1.3: the alert arrives after the handshake)',
      settings: withCa,
      error: () => connectionError(
        '804CA5534F7F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n',
        'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
        '127.0.0.1:9093',
      ),
      variable: 'KAFKA_SSL_CERT_FILE',
      message: 'KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: the broker at 127.0.0.1:9093 requires a client certificate (mutual TLS) and none was given (sslv3 alert bad certificate)',
    },
    {
      what: 'a client certificate the broker does not accept',
      settings: mutual,
      error: () => connectionError(
        '40E7A8F1B17F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1605:SSL alert number 116\n',
        'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
        '127.0.0.1:9093',
      ),
      variable: 'KAFKA_SSL_CERT_FILE',
      message: 'KAFKA_SSL_CERT_FILE: the broker at 127.0.0.1:9093 refused the client certificate (tlsv13 alert certificate required): is it signed by a CA the broker trusts, current, and KAFKA_SSL_KEY_FILE its key?',
    },
    {
      what: 'TLS to a PLAINTEXT listener (or to the controller port)',
      settings: mutual,
      error: () => connectionError('Client network socket disconnected before secure TLS connection was established', 'ECONNRESET', '127.0.0.1:9093'),
      variable: 'KAFKA_SSL',
      message:
        "KAFKA_SSL=true but the broker at 127.0.0.1:9093 did not complete a TLS handshake (Client network socket disconnected before secure TLS connection was established): it is probably a PLAINTEXT listener; set KAFKA_SSL=false or use the TLS listener's port in KAFKA_BROKERS",
    },
    {
      what: 'TLS to something that answers in clear (an HTTP server)',
      settings: tls,
      error: () => connectionError('1C0A0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:355:\n', 'ERR_SSL_WRONG_VERSION_NUMBER', '127.0.0.1:9093'),
      variable: 'KAFKA_SSL',
      message: "KAFKA_SSL=true but the broker at 127.0.0.1:9093 did not complete a TLS handshake (wrong version number): it is probably a PLAINTEXT listener; set KAFKA_SSL=false or use the TLS listener's port in KAFKA_BROKERS",
    },
    {
      what: 'plaintext to a TLS listener: the broker closes the connection',
      settings: plain,
      error: () => retriesExceeded(new errors.KafkaJSConnectionClosedError('Closed connection', { host: '127.0.0.1', port: 9092 })),
      variable: 'KAFKA_SSL',
      message: 'KAFKA_SSL=false: the broker at 127.0.0.1:9092 closed the connection at once: it is probably a TLS listener (set KAFKA_SSL=true) or a SASL one (KAFKA_SASL_MECHANISM); or not a Kafka listener (KAFKA_BROKERS)',
    },
    {
      what: 'plaintext to a TLS listener: no answer to the first request',
      settings: plain,
      error: () => retriesExceeded(new errors.KafkaJSRequestTimeoutError('Request ApiVersions(key: 18, version: 2) timed out', { broker: '127.0.0.1:9092' })),
      variable: 'KAFKA_SSL',
      message: 'KAFKA_SSL=false: the broker at 127.0.0.1:9092 did not answer a first request: it is probably a TLS listener (set KAFKA_SSL=true) or a SASL one (KAFKA_SASL_MECHANISM); or not a Kafka listener (KAFKA_BROKERS)',
    },
    {
      what: 'the KRaft controller port',
      settings: plain,
      error: () => new errors.KafkaJSServerDoesNotSupportApiKey('The Kafka server does not support the requested API version', { apiKey: 3, apiName: 'Metadata' }),
      variable: 'KAFKA_BROKERS',
      message: "KAFKA_BROKERS: the server at 127.0.0.1:9092 does not answer Metadata requests: it is probably a KRaft controller listener (controller.listener.names), not a broker listener; use the brokers' client port",
    },
    {
      what: 'a wrong SASL password',
      settings: sasl,
      error: () => new errors.KafkaJSSASLAuthenticationError('SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512'),
      variable: 'KAFKA_SASL_USERNAME',
      message:
        'SASL authentication as "shredder" (scram-sha-512) failed at 127.0.0.1:9093: SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512; check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) and KAFKA_SASL_MECHANISM',
    },
    {
      what: 'a SASL mechanism the listener does not enable',
      settings: sasl,
      error: () => new errors.KafkaJSSASLAuthenticationError('SASL SCRAM-SHA-512 mechanism is not supported by the server'),
      variable: 'KAFKA_SASL_MECHANISM',
      message: 'KAFKA_SASL_MECHANISM: SASL SCRAM-SHA-512 mechanism is not supported by the server; use a mechanism the listener at 127.0.0.1:9093 enables',
    },
    {
      what: 'SASL against a listener without SASL',
      settings: sasl,
      error: () => new errors.KafkaJSProtocolError({ message: 'Request is not valid given the current SASL state', type: 'ILLEGAL_SASL_STATE', code: 34, retriable: false }),
      variable: 'KAFKA_SASL_MECHANISM',
      message: 'KAFKA_SASL_MECHANISM is set but the listener at 127.0.0.1:9093 does not use SASL (Request is not valid given the current SASL state): unset the KAFKA_SASL_* variables, or point KAFKA_BROKERS at the SASL listener',
    },
  ];

  for (const { what, settings, error, variable, message } of cases) {
    it(`${what}: names ${variable}`, () => {
      const problem = explainConnectionError(error(), settings);
      expect(problem?.message).to.equal(message);
      expect(problem?.settings[0]).to.equal(variable);
      expect(problem?.message).not.to.include('\n');
      expect(problem?.message).not.to.include('hunter2-secret');
    });
  }

  it('in the library\'s terms, names its options for every shape, and no variable', () => {
    const options = new Set(['brokers', 'ssl', 'ssl.ca', 'ssl.cert', 'ssl.key', 'sasl', 'sasl.mechanism', 'sasl.username', 'sasl.password']);
    for (const { what, settings, error } of cases) {
      const problem = inLibraryTerms(explainConnectionError(error(), settings)!);
      expect(problem.message, what).not.to.match(/KAFKA_|SHREDDER_/);
      for (const option of problem.settings) expect(options.has(option), `${what}: ${option}`).to.equal(true);
    }
    const sasl = cases.find((c) => c.variable === 'KAFKA_SASL_USERNAME')!;
    expect(inLibraryTerms(explainConnectionError(sasl.error(), sasl.settings)!).message).to.contain('check sasl.username, sasl.password and sasl.mechanism');
    const noSasl = cases.find((c) => /does not use SASL/.test(c.message))!;
    expect(inLibraryTerms(explainConnectionError(noSasl.error(), noSasl.settings)!).message).to.contain('unset sasl, or point brokers at the SASL listener');
  });

  it('leaves other errors alone', () => {
    const others = [
      new Error('partition counts differ: a has 3, b has 4'),
      new errors.KafkaJSProtocolError({ message: 'Not authorized to access topics: [Topic authorization failed]', type: 'TOPIC_AUTHORIZATION_FAILED', code: 29, retriable: false }),
      retriesExceeded(new errors.KafkaJSProtocolError({ message: 'This server does not host this topic-partition', type: 'UNKNOWN_TOPIC_OR_PARTITION', code: 3, retriable: true })),
      'a string',
      undefined,
    ];
    for (const other of others) expect(explainConnectionError(other, plain)).to.equal(undefined);
    expect(connectionErrorMessage(others[0], plain)).to.equal('partition counts differ: a has 3, b has 4');
    expect(connectionErrorMessage(connectionError('connect ECONNREFUSED 127.0.0.1:9092', 'ECONNREFUSED', '127.0.0.1:9092'), plain)).to.match(/^cannot reach any broker/);
  });
});

describe('isConnectingLog', () => {
  it('picks out what kafkajs logs while it fails to connect, and nothing else', () => {
    const connecting = [
      'Connection error: connect ECONNREFUSED 127.0.0.1:1',
      'Failed to connect to seed broker, trying another broker from the list: Connection error: connect ECONNREFUSED 127.0.0.1:1',
      'Connection timeout',
      'Closed connection',
      'Crash: KafkaJSNumberOfRetriesExceeded: Connection error: connect ECONNREFUSED 127.0.0.1:1',
      'Crash: KafkaJSConnectionError: Connection error: connect ECONNREFUSED 127.0.0.1:1',
      'Restarting the consumer in 300ms',
      'SASL SCRAM SHA512 authentication failed: Authentication failed',
      'Response SaslHandshake(key: 17, version: 1) Request is not valid given the current SASL state',
    ];
    for (const message of connecting) expect(isConnectingLog(message), message).to.equal(true);
    const others = [
      'Response Metadata(key: 3, version: 6) Not authorized to access topics: [Topic authorization failed]',
      'Crash: KafkaJSProtocolError: The group member needs to have a valid member id',
      'Transaction state exception',
    ];
    for (const message of others) expect(isConnectingLog(message), message).to.equal(false);
  });
});
