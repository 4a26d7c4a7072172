// Export benchmark (`npm run bench:export`) on a real local Kafka broker (or KAFKA_BROKERS): how fast
// `kafka-shredder export` scans a subject's partition, against a plain kafkajs read of the same
// partition with the same fetch sizes in the same run. BENCH_RECORDS (default 600,000) records of
// 100 B of BENCH_SUBJECTS (default 10,000) subjects on 3 partitions, encrypted by the encryptor first;
// then, BENCH_ROUNDS times (default 3) in turn, the plain read and the export of one subject. The best
// round of each is reported (the machine is shared: the best is the least disturbed).
// BENCH_RECORD_KEYS=pseudonym: the encryptor keys records by pseudonyms (SHREDDER_RECORD_KEYS), and the
// export finds the subject's by opening the keys topic's sealed subject ids.
import '../src/kafka/linear-grouping.js'; // (first: before kafkajs loads, as the CLI does)
import '../src/kafka/record-encoding.js'; // (as early: see there)
import '../src/kafka/record-batch-encoding.js'; // (as early: see there)
import '../src/kafka/produce-request-encoding.js'; // (as early: see there)
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Partitioners, type Message } from 'kafkajs';
import { exportSubject } from '../src/export/subject-export.js';
import { createKafka } from '../src/kafka/client.js';
import { partitionEnds, readUpTo } from '../src/kafka/read-to-end.js';
import { subjectPartition } from '../src/kafka/subject-partition.js';
import { openKeyring } from '../src/keys/key-providers.js';
import { createLogger } from '../src/observability/logger.js';
import { benchBrokers, configFor, createInput, encryptor, measure } from './processors.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 600_000);
const SUBJECTS = Number(process.env.BENCH_SUBJECTS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const VALUE_BYTES = 100;
const PRODUCE_CHUNK = 15_000;
/** The export's own fetch size (subject-export.ts), given to the plain read too. */
const FETCH_BYTES = 8 * 1024 * 1024;
const subjectOf = (i: number) => `subject-${String(i).padStart(6, '0')}`;
const rate = (n: number) => Math.round(n).toLocaleString('en-US');

async function main() {
  const { brokers, broker } = await benchBrokers();
  const recordKeys = process.env.BENCH_RECORD_KEYS ?? 'subject';
  const config = configFor(brokers, 'export', { SHREDDER_RECORD_KEYS: recordKeys });
  const logger = createLogger('warn');
  const kafka = createKafka(config.kafka, logger);
  try {
    await createInput(kafka, config);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    for (let from = 0; from < RECORDS; from += PRODUCE_CHUNK) {
      const count = Math.min(PRODUCE_CHUNK, RECORDS - from);
      const slab = randomBytes(count * VALUE_BYTES);
      const messages: Message[] = Array.from({ length: count }, (_, i) => ({ key: subjectOf((from + i) % SUBJECTS), value: slab.subarray(i * VALUE_BYTES, (i + 1) * VALUE_BYTES) }));
      await producer.send({ topic: config.routes[0].from, acks: 1, messages });
    }
    await producer.disconnect();
    await measure(encryptor, config, RECORDS, VALUE_BYTES);

    const subject = Buffer.from(subjectOf(42));
    const topic = config.routes[0].to;
    const partition = subjectPartition(subject, 3);
    const [end] = await partitionEnds(kafka, topic, [partition]);
    console.log(`export: ${RECORDS.toLocaleString('en-US')} records of ${SUBJECTS.toLocaleString('en-US')} subjects on 3 partitions, record keys: ${recordKeys}; the subject's partition is ${partition}`);

    const keys = openKeyring(config.keys);
    let plainBest = 0;
    let exportBest = 0;
    let found = 0;
    let scanned = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      let read = 0;
      let started = performance.now();
      await readUpTo(kafka, topic, [end], (_, messages) => void (read += messages.length), { maxBytesPerPartition: FETCH_BYTES, groupPrefix: 'bench-export-plain' });
      const plain = read / ((performance.now() - started) / 1000);
      started = performance.now();
      let lines = 0;
      const summary = await exportSubject({ kafka, subject, topics: [topic], keysTopic: config.keysTopic, keyring: keys.keyring, write: () => void lines++ });
      const exported = summary.topics[0].scanned / ((performance.now() - started) / 1000);
      if (summary.topics[0].scanned !== read || lines !== summary.exported || summary.topics[0].records.readable !== lines) throw new Error(`round ${round}: the export scanned ${summary.topics[0].scanned} and wrote ${lines} lines`);
      found = lines;
      scanned = read;
      console.log(`  round ${round}: plain read ${rate(plain)} records/s, export ${rate(exported)} records/s scanned (${lines} of the subject's records written)`);
      plainBest = Math.max(plainBest, plain);
      exportBest = Math.max(exportBest, exported);
    }
    await keys.close();
    console.log('');
    console.log('figure                    value                        baseline                            ratio');
    console.log(`export, records scanned   ${`${rate(exportBest)} records/s`.padEnd(28)} ${`plain read ${rate(plainBest)} records/s`.padEnd(35)} ${(exportBest / plainBest).toFixed(2)}`);
    console.log(`(best of ${ROUNDS} rounds each; ${found} records of the subject among ${scanned.toLocaleString('en-US')}; export time includes reading its keys and opening them)`);
  } finally {
    rmSync(config.stateDir, { recursive: true, force: true });
    if (broker) await broker.stop();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
