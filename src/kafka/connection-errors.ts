// The first contact with the cluster, explained: kafkajs and Node report a wrong KAFKA_BROKERS, a TLS
// mismatch or a SASL failure as a retried connection error with a stack (or a bare "Closed
// connection"); this turns it into one line naming the variable to check. The shapes are the ones
// kafkajs 2.2.4 raised against a real broker (test/integration/tls.test.ts, and the table in
// test/unit/kafka/connection-errors.test.ts). Messages name hosts, ports and user names, never a
// password or key.
import { FatalError } from '../errors/shredder-errors.js';
import type { ConnectionSettings } from './client.js';

/** What explains a connection error: the connection's settings (whether a CA or client certificate was given). */
type Settings = Pick<ConnectionSettings, 'brokers' | 'ssl' | 'sasl' | 'tls'>;

export interface ConnectionProblem {
  /** The variables to check, most likely first. */
  settings: string[];
  /** One line: what failed, where, why, and what to set. */
  message: string;
}

interface ErrorShape {
  name?: string;
  message?: string;
  code?: string | number;
  type?: string;
  broker?: string;
  apiName?: string;
  cause?: unknown;
}

/**
 * The error and what it wraps, innermost first: KafkaJSNumberOfRetriesExceeded holds the last
 * attempt's error, which has the code and the broker's address.
 */
function chainOf(err: unknown): ErrorShape[] {
  const chain: ErrorShape[] = [];
  for (let e = err; e && typeof e === 'object' && chain.length < 8 && !chain.includes(e as ErrorShape); e = (e as ErrorShape).cause) chain.push(e as ErrorShape);
  return chain.reverse();
}

const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (DNS), try again later',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** The broker does not trust-chain to a CA we have (Node's X509 verification codes). */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED']);

/** TLS alerts from a broker that refused our client certificate, or the lack of one. */
const CLIENT_CERTIFICATE_REFUSED = /^ERR_SSL_(SSLV3_ALERT_BAD_CERTIFICATE|TLSV13_ALERT_CERTIFICATE_REQUIRED|TLSV1_ALERT_UNKNOWN_CA|SSLV3_ALERT_CERTIFICATE_(UNKNOWN|EXPIRED|REVOKED|UNSUPPORTED)|TLSV1_ALERT_ACCESS_DENIED|SSLV3_ALERT_HANDSHAKE_FAILURE)$/;

/** The reason without kafkajs' "Connection error: " and OpenSSL's error-stack noise. */
function reasonOf(error: ErrorShape): string {
  const text = String(error.message ?? error.code ?? 'unknown error').replace(/^Connection error: /, '').trim();
  // "804C...:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/...:SSL alert number 42"
  const openssl = /SSL routines:[^:]*:([^:]+)/.exec(text);
  return (openssl ? openssl[1] : text).replace(/\s+/g, ' ');
}

export function explainConnectionError(err: unknown, connection: Settings): ConnectionProblem | undefined {
  const chain = chainOf(err);
  const seeds = connection.brokers.join(',');
  const brokersClause = `KAFKA_BROKERS (${seeds})`;
  for (const error of chain) {
    const name = error.name ?? '';
    const code = typeof error.code === 'string' ? error.code : '';
    const at = error.broker ?? seeds;
    const reason = reasonOf(error);
    // an address from the cluster metadata, not from KAFKA_BROKERS: the seed answered, the advertised listener does not
    const advertised = error.broker !== undefined && !connection.brokers.includes(error.broker);
    const where = advertised ? `the broker ${at} (advertised by the cluster; ${brokersClause} answered)` : `the broker at ${at}`;

    if (name === 'KafkaJSSASLAuthenticationError') {
      const who = connection.sasl ? ` as ${JSON.stringify(connection.sasl.username)} (${connection.sasl.mechanism})` : '';
      if (/mechanism is not supported/.test(reason)) {
        return { settings: ['KAFKA_SASL_MECHANISM'], message: `KAFKA_SASL_MECHANISM: ${reason}; use a mechanism the listener at ${at} enables` };
      }
      return {
        settings: ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_MECHANISM'],
        message: `SASL authentication${who} failed at ${at}: ${reason}; check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) and KAFKA_SASL_MECHANISM`,
      };
    }
    if (error.type === 'ILLEGAL_SASL_STATE' && connection.sasl) {
      return {
        settings: ['KAFKA_SASL_MECHANISM', 'KAFKA_BROKERS'],
        message: `KAFKA_SASL_MECHANISM is set but the listener at ${seeds} does not use SASL (${reason}): unset the KAFKA_SASL_* variables, or point KAFKA_BROKERS at the SASL listener`,
      };
    }
    if (name === 'KafkaJSServerDoesNotSupportApiKey') {
      return {
        settings: ['KAFKA_BROKERS'],
        message: `KAFKA_BROKERS: the server at ${seeds} does not answer ${error.apiName ?? 'client'} requests: it is probably a KRaft controller listener (controller.listener.names), not a broker listener; use the brokers' client port`,
      };
    }
    if (connection.ssl) {
      if (UNTRUSTED.has(code)) {
        const fix = connection.tls?.ca ? 'KAFKA_SSL_CA_FILE does not hold the CA that signed it' : 'set KAFKA_SSL_CA_FILE to the CA bundle that signed it';
        return { settings: ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL'], message: `KAFKA_SSL_CA_FILE: the certificate of ${where} is not trusted (${reason}): ${fix}` };
      }
      if (EXPIRED.has(code)) {
        return { settings: ['KAFKA_SSL'], message: `KAFKA_SSL: the certificate of ${where} is not valid now (${reason}): the broker needs a current certificate` };
      }
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
        return {
          settings: ['KAFKA_BROKERS', 'KAFKA_SSL'],
          message: `KAFKA_BROKERS: the certificate of ${where} is not for that host name (${reason}): name the brokers in KAFKA_BROKERS as their certificates do`,
        };
      }
      if (CLIENT_CERTIFICATE_REFUSED.test(code)) {
        return connection.tls?.cert
          ? {
            settings: ['KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'],
            message: `KAFKA_SSL_CERT_FILE: ${where} refused the client certificate (${reason}): is it signed by a CA the broker trusts, current, and KAFKA_SSL_KEY_FILE its key?`,
          }
          : {
            settings: ['KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'],
            message: `KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: ${where} requires a client certificate (mutual TLS) and none was given (${reason})`,
          };
      }
      if (code === 'ECONNRESET' || code === 'EPROTO' || /^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE|HTTP_REQUEST)/.test(code) || /before secure TLS connection/.test(reason)) {
        return {
          settings: ['KAFKA_SSL', 'KAFKA_BROKERS'],
          message: `KAFKA_SSL=true but ${where} did not complete a TLS handshake (${reason}): it is probably a PLAINTEXT listener; set KAFKA_SSL=false or use the TLS listener's port in KAFKA_BROKERS`,
        };
      }
    }
    if (name === 'KafkaJSConnectionClosedError' || name === 'KafkaJSRequestTimeoutError') {
      const what = name === 'KafkaJSConnectionClosedError' ? 'closed the connection at once' : 'did not answer a first request';
      const hint = connection.ssl
        ? 'check KAFKA_BROKERS (is it a Kafka listener?) and whether the listener needs SASL (KAFKA_SASL_MECHANISM)'
        : 'it is probably a TLS listener (set KAFKA_SSL=true) or a SASL one (KAFKA_SASL_MECHANISM); or not a Kafka listener (KAFKA_BROKERS)';
      return { settings: connection.ssl ? ['KAFKA_BROKERS', 'KAFKA_SASL_MECHANISM'] : ['KAFKA_SSL', 'KAFKA_BROKERS'], message: `KAFKA_SSL=${connection.ssl}: ${where} ${what}: ${hint}` };
    }
    const unreachable = UNREACHABLE[code] ?? (error.message === 'Connection timeout' ? 'connection timed out' : undefined);
    if (unreachable) {
      const detail = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `${unreachable}: ${reason}` : unreachable;
      if (advertised) {
        return {
          settings: ['KAFKA_BROKERS'],
          message: `cannot reach ${where}: ${detail}; check the brokers' advertised.listeners (what the cluster tells clients to connect to)`,
        };
      }
      return { settings: ['KAFKA_BROKERS'], message: `cannot reach any broker in ${brokersClause}: ${detail}` };
    }
  }
  return undefined;
}

/** The explanation of a connection error, or the error's own message. */
export function connectionErrorMessage(err: unknown, connection: Settings): string {
  return explainConnectionError(err, connection)?.message ?? (err instanceof Error ? err.message : String(err));
}

/**
 * What kafkajs logs at ERROR while it tries to connect (and the consumer restarts that follow): the
 * caller reports the outcome in one line, so these go to debug until the cluster has answered once.
 */
const CONNECTING = /^(Connection error|Connection timeout|Closed connection|Failed to connect|Crash: KafkaJS(NumberOfRetriesExceeded|Connection|ConnectionClosed|RequestTimeout|SASLAuthentication|ServerDoesNotSupportApiKey)|Restarting the consumer|SASL .*(authentication failed|mechanism is not supported|Invalid username or password)|Response Sasl(Handshake|Authenticate)|Request .*timed out|The Kafka server does not support)/;

export function isConnectingLog(message: string): boolean {
  return CONNECTING.test(message);
}

/**
 * The library's options (DecryptingConsumerOptions) for the variables the explanations name, most
 * specific first, so that an application is told which of its own options to check.
 */
const LIBRARY_OPTIONS: [RegExp, string][] = [
  [/KAFKA_SASL_PASSWORD \(or KAFKA_SASL_PASSWORD_FILE\)/g, 'sasl.password'],
  [/the KAFKA_SASL_\* variables/g, 'sasl'],
  [/KAFKA_SSL_CA_FILE/g, 'ssl.ca'],
  [/KAFKA_SSL_CERT_FILE/g, 'ssl.cert'],
  [/KAFKA_SSL_KEY_FILE/g, 'ssl.key'],
  [/KAFKA_SASL_MECHANISM/g, 'sasl.mechanism'],
  [/KAFKA_SASL_USERNAME/g, 'sasl.username'],
  [/KAFKA_SASL_PASSWORD(_FILE)?/g, 'sasl.password'],
  [/KAFKA_SSL=(true|false)/g, 'ssl: $1'],
  [/KAFKA_SSL/g, 'ssl'],
  [/KAFKA_BROKERS/g, 'brokers'],
];

const toLibraryTerms = (text: string) => LIBRARY_OPTIONS.reduce((t, [variable, option]) => t.replace(variable, option), text);

/** A connection problem in the library's terms: its options (`brokers`, `ssl.ca`, `sasl.mechanism`, ...) instead of variables. */
export function inLibraryTerms(problem: ConnectionProblem): ConnectionProblem {
  return { settings: [...new Set(problem.settings.map(toLibraryTerms))], message: toLibraryTerms(problem.message) };
}

/** What the library rejects with when it cannot connect: one line naming the options to check; `cause` is kafkajs' error. */
export class KafkaConnectionError extends FatalError {
  override readonly name: string = 'KafkaConnectionError';
  /** The options to check, most likely first. */
  readonly settings: string[];

  constructor(problem: ConnectionProblem, cause: unknown) {
    super(problem.message, { cause });
    this.settings = problem.settings;
  }
}
