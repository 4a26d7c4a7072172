// A kafkajs client from the contract's connection variables, logging through our JSON logger.
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaConnection } from '../config/config.js';
import type { Logger } from '../observability/logger.js';

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

/** The kafkajs connection settings from the contract's variables (TLS on KAFKA_SSL, SASL as given). */
export function connectionConfig(connection: KafkaConnection): Pick<KafkaConfig, 'clientId' | 'brokers' | 'ssl' | 'sasl'> {
  return {
    clientId: connection.clientId,
    brokers: connection.brokers,
    ssl: connection.ssl,
    sasl: connection.sasl as SASLOptions | undefined,
  };
}

export function createKafka(connection: KafkaConnection, logger: Logger): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  return new Kafka({
    ...connectionConfig(connection),
    logLevel: logger.isLevelEnabled('debug') ? logLevel.DEBUG : logLevel.WARN,
    logCreator: () => ({ level, label, log: entry }: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry;
      if (NOT_APPLICABLE.test(message)) return;
      let method = LEVELS[level] ?? 'info';
      if ((method === 'error' || method === 'warn') && RETRIED.test(`${message} ${String(fields.error ?? '')}`)) method = 'debug';
      log[method]({ kafkajs: label, ...fields }, message);
    },
  });
}
