// A kafkajs client from the contract's connection variables, logging through our JSON logger.
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaConnection } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { isConnectingLog } from './connection-errors.js';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

// kafkajs logs retriable protocol errors (CONCURRENT_TRANSACTIONS, NOT_COORDINATOR, rebalances) at
// ERROR although it retries them: routine on a busy transactional producer, so debug for an operator
// (a retry that finally fails surfaces as an aborted batch, which we log as a warning).
const RETRIED = /CONCURRENT_TRANSACTIONS|concurrent operation|not the correct coordinator|rebalanc|NOT_COORDINATOR|coordinator is loading/i;

// Our transactional producers retry a bounded number of times on purpose: a transaction that fails is
// aborted and its batch replayed from the committed offsets, so exactly-once does not rest on retries.
const NOT_APPLICABLE = /^Limiting retries for the idempotent producer/;

/**
 * Retries of the processors' consumers: after a broker restart kafkajs' default back-off (300 ms
 * doubling, five times) leaves a consumer waiting up to ten seconds after the broker is back, and a
 * restore behind it for as long. Capped at 2 s, a consumer is fetching again within 2 s of the broker's
 * return, and still gives up (restarting itself) only after some 15 s of failures.
 */
export const CONSUMER_RETRY = { initialRetryTime: 200, maxRetryTime: 2000, retries: 10 };

/** A CA bundle and client certificate (PEM), as KAFKA_SSL_*_FILE give them or a library caller does. */
export type TlsOptions = Pick<ConnectionOptions, 'ca' | 'cert' | 'key'>;

/** A connection whose TLS material may also be strings or arrays (tls.ConnectionOptions). */
export type ConnectionSettings = Omit<KafkaConnection, 'tls'> & { tls?: TlsOptions };

/**
 * The kafkajs connection settings from the contract's variables: TLS on KAFKA_SSL (with the CA bundle
 * and client certificate of KAFKA_SSL_*_FILE when given: tls.connect options), SASL as given.
 */
export function connectionConfig(connection: ConnectionSettings): Pick<KafkaConfig, 'clientId' | 'brokers' | 'ssl' | 'sasl'> {
  const { ca, cert, key } = connection.tls ?? {};
  const files = Object.fromEntries(Object.entries({ ca, cert, key }).filter(([, v]) => v !== undefined)) as TlsOptions;
  return {
    clientId: connection.clientId,
    brokers: connection.brokers,
    ssl: connection.ssl && Object.keys(files).length > 0 ? files : connection.ssl,
    sasl: connection.sasl as SASLOptions | undefined,
  };
}

export function createKafka(connection: ConnectionSettings, logger: Logger): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  // Until one of its clients has connected, what kafkajs logs about connecting is the start's failure,
  // which the caller reports in one line (connection-errors.ts): debug. Later (a broker lost while
  // running) it stays as kafkajs logs it.
  let connected = false;
  const kafka = new Kafka({
    ...connectionConfig(connection),
    logLevel: logger.isLevelEnabled('debug') ? logLevel.DEBUG : logLevel.WARN,
    logCreator: () => ({ level, label, log: entry }: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry;
      if (NOT_APPLICABLE.test(message)) return;
      let method = LEVELS[level] ?? 'info';
      if ((method === 'error' || method === 'warn') && RETRIED.test(`${message} ${String(fields.error ?? '')}`)) method = 'debug';
      if (!connected && isConnectingLog(message)) method = 'debug';
      log[method]({ kafkajs: label, ...fields }, message);
    },
  });
  return onFirstConnect(kafka, () => (connected = true));
}

/** Calls `connected` when an admin, producer or consumer of `kafka` first connects. */
function onFirstConnect(kafka: Kafka, connected: () => void): Kafka {
  for (const factory of ['admin', 'producer', 'consumer'] as const) {
    const create = (kafka[factory] as (config?: unknown) => { on(event: string, listener: () => void): unknown; events: { CONNECT: string } }).bind(kafka);
    Object.defineProperty(kafka, factory, {
      configurable: true,
      value: (config?: unknown) => {
        const client = create(config);
        client.on(client.events.CONNECT, connected);
        return client;
      },
    });
  }
  return kafka;
}
