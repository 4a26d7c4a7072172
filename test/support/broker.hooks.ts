// Mocha root hooks for the integration run: one real local Kafka broker for the whole run, unless
// KAFKA_BROKERS names a cluster to use instead; and the schema registry, if a test started one
// (test/support/schema-registry.ts starts it on first use, not here).
import '../../src/kafka/linear-grouping.js'; // (first: before kafkajs loads, as the CLI does)
import '../../src/kafka/record-encoding.js'; // (as early: see there)
import '../../src/kafka/record-batch-encoding.js'; // (as early: see there)
import '../../src/kafka/produce-request-encoding.js'; // (as early: see there)
import '../../src/kafka/compression.js'; // snappy, lz4 and zstd codecs, as the CLI and the library register them
import { join } from 'node:path';
import { LocalKafkaBroker } from '../../src/dev/local-broker/index.js';
import { stopTestSchemaRegistry } from './schema-registry.js';

let broker: LocalKafkaBroker | undefined;

/** The log folder (log.dirs: a folder per topic-partition) of the broker these hooks started, if they did. */
export function localBrokerLogDirectory(): string | undefined {
  const dataDir = broker?.dataDirectory;
  return dataDir && join(dataDir, 'log'); // (see LocalKafkaBroker.start)
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    if (process.env.KAFKA_BROKERS) return;
    this.timeout(300_000); // the first run downloads the broker jars through Maven
    broker = new LocalKafkaBroker({ onProgress: (line) => console.log(`    [kafka] ${line}`) });
    process.env.KAFKA_BROKERS = (await broker.start()).join(',');
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopTestSchemaRegistry();
    if (!broker) return;
    await broker.stop();
    delete process.env.KAFKA_BROKERS;
  },
};
