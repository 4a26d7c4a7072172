// server.properties for a single-node KRaft broker+controller on loopback, tuned for a developer
// machine: replication factor 1 for the internal topics, no rebalance delay, a log cleaner that wakes
// up every second so compaction (the erasure deadline's mechanism) can be watched in tests.
export interface BrokerPorts {
  broker: number;
  controller: number;
  /** The SSL listener's port, when there is one (see SslListenerFiles). */
  ssl?: number;
}

/** PEM files of an extra SSL listener (inter-broker traffic stays on PLAINTEXT). */
export interface SslListenerFiles {
  /** One PEM file holding the listener's private key (PKCS#8) and certificate chain. */
  keystore: string;
  /** PEM file of the CAs client certificates are checked against. */
  truststore?: string;
  /** `required`: mutual TLS; `requested`: a client certificate is checked when given; default `none`. */
  clientAuth?: 'required' | 'requested' | 'none';
}

/** The listener settings an SSL listener adds (Kafka's PEM key and trust stores, KIP-651). */
function sslListenerProperties(port: number, files: SslListenerFiles): Record<string, string | number> {
  const prefix = 'listener.name.ssl.';
  return {
    listeners: `SSL://127.0.0.1:${port}`,
    [`${prefix}ssl.keystore.type`]: 'PEM',
    [`${prefix}ssl.keystore.location`]: files.keystore,
    ...(files.truststore ? { [`${prefix}ssl.truststore.type`]: 'PEM', [`${prefix}ssl.truststore.location`]: files.truststore } : {}),
    [`${prefix}ssl.client.auth`]: files.clientAuth ?? 'none',
  };
}

export function brokerProperties(ports: BrokerPorts, logDir: string, ssl?: SslListenerFiles): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${ports.controller}`,
    listeners: `PLAINTEXT://127.0.0.1:${ports.broker},CONTROLLER://127.0.0.1:${ports.controller}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${ports.broker}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': logDir,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 5,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 5,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Topics are created explicitly (auto-creation under KRaft races with the first produce).
    'auto.create.topics.enable': false,
    'log.cleaner.backoff.ms': 1000,
    'log.cleaner.dedupe.buffer.size': 16 * 1024 * 1024,
    'log.retention.check.interval.ms': 5000,
  };
  if (ssl && ports.ssl !== undefined) {
    const { listeners, ...sslProps } = sslListenerProperties(ports.ssl, ssl);
    props.listeners += `,${listeners}`;
    props['advertised.listeners'] += `,${listeners}`;
    props['listener.security.protocol.map'] += ',SSL:SSL';
    Object.assign(props, sslProps);
  }
  return Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n') + '\n';
}

export const LOG4J2_PROPERTIES = `status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = \${sys:kafka.logs.dir}/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.server.name = org.apache.kafka.server
logger.server.level = INFO
`;
