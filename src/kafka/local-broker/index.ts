export { LocalKafkaBroker, type LocalKafkaBrokerOptions, type LocalTlsListenerOptions } from './local-kafka-broker.js';
export { resolveKafkaJars, DEFAULT_KAFKA_VERSION, defaultCacheDir } from './kafka-jars.js';
