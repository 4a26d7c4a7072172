// Development tooling (src/dev/): the local broker that the demo, the tests and the benchmarks start.
// Not part of the product's API: the package's main entry does not export it.
export { LocalKafkaBroker, type LocalKafkaBrokerOptions, type LocalTlsListenerOptions } from './local-kafka-broker.js';
export { resolveKafkaJars, DEFAULT_KAFKA_VERSION, defaultCacheDir } from './kafka-jars.js';
