export { LocalKafkaBroker, type LocalKafkaBrokerOptions } from './local-kafka-broker.js';
export { resolveKafkaJars, DEFAULT_KAFKA_VERSION, defaultCacheDir } from './kafka-jars.js';
