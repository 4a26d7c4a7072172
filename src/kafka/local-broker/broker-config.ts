// server.properties for a single-node KRaft broker+controller on loopback, tuned for a developer
// machine: replication factor 1 for the internal topics, no rebalance delay, a log cleaner that wakes
// up every second so compaction (the erasure deadline's mechanism) can be watched in tests.
export interface BrokerPorts {
  broker: number;
  controller: number;
}

export function brokerProperties(ports: BrokerPorts, logDir: string): string {
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
