// Avro field mode benchmark (`npm run bench:registry`) on the local broker and a local schema registry
// (Apicurio; or KAFKA_BROKERS and SCHEMA_REGISTRY_URL): N customer events in the registry wire format,
// encoded by @kafkajs/confluent-schema-registry, drained in one run by (a) the pass-through of
// bench:e2e, (b) the encryptor sealing each value whole, (c) the encryptor sealing four Avro fields in
// place under the same schema id and (d) the decryptor reading what (c) wrote. Every mode drains the
// same input topic (each with its own consumer group), so all of them read the very same records.
import '../src/kafka/linear-grouping.js'; // (first: before kafkajs loads, as the CLI does)
import '../src/kafka/record-encoding.js'; // (as early: see there)
import '../src/kafka/record-batch-encoding.js'; // (as early: see there)
import '../src/kafka/produce-request-encoding.js'; // (as early: see there)
import { randomBytes } from 'node:crypto';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { ShredderConfig } from '../src/config/config.js';
import type { LocalKafkaBroker } from '../src/dev/local-broker/index.js';
import { LocalSchemaRegistry } from '../src/dev/schema-registry/index.js';
import { benchBrokers, configFor, createInput, decryptConfigFor, decryptor, encryptor, measure, passThrough, type Processor, type Result } from './processors.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 50_000);
const SUBJECTS = 1000;
const FIELDS = '$.email,$.fullName,$.address.street,$.phones[*]';

const CUSTOMER_EVENT = {
  type: 'record',
  name: 'CustomerEvent',
  namespace: 'bench',
  fields: [
    { name: 'eventId', type: 'string' },
    { name: 'eventType', type: 'string' },
    { name: 'occurredAt', type: 'long' },
    { name: 'customerId', type: 'string' },
    { name: 'email', type: 'string' },
    { name: 'fullName', type: 'string' },
    {
      name: 'address',
      type: {
        type: 'record',
        name: 'Address',
        fields: [
          { name: 'street', type: 'string' },
          { name: 'city', type: 'string' },
          { name: 'postalCode', type: 'string' },
          { name: 'country', type: 'string' },
        ],
      },
    },
    { name: 'phones', type: { type: 'array', items: 'string' } },
    { name: 'attributes', type: { type: 'map', values: 'string' } },
    { name: 'loyaltyPoints', type: 'int' },
    { name: 'lifetimeValue', type: 'double' },
    { name: 'marketingOptIn', type: 'boolean' },
    { name: 'userAgent', type: ['null', 'string'], default: null },
  ],
};

const customerEvent = (i: number) => ({
  eventId: `evt-${i}-${randomBytes(8).toString('hex')}`,
  eventType: 'CUSTOMER_PROFILE_UPDATED',
  occurredAt: 1_700_000_000_000 + i * 1000,
  customerId: `user-${i}`,
  email: `customer.number${i}@example.org`,
  fullName: `Customer Number ${i} Dupont`,
  address: { street: `${i} rue de la République, bâtiment B`, city: 'Lyon', postalCode: '69002', country: 'FR' },
  phones: [`+33 6 12 34 ${String(i % 100).padStart(2, '0')} 00`, `+33 4 78 00 ${String(i % 100).padStart(2, '0')} 11`],
  attributes: { segment: 'gold', channel: 'web', locale: 'fr-FR', referrer: 'newsletter-2024-spring', device: 'ios-17.4' },
  loyaltyPoints: (i * 13) % 5000,
  lifetimeValue: 1234.56 + i,
  marketingOptIn: i % 2 === 0,
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
});

/** One encoded event per subject, made once: the producer resends these buffers, so filling stays cheap. */
async function encodedEvents(registry: SchemaRegistry, id: number): Promise<{ key: Buffer; value: Buffer }[]> {
  return Promise.all(Array.from({ length: SUBJECTS }, async (_, i) => ({ key: Buffer.from(`user-${i}`), value: await registry.encode(id, customerEvent(i)) })));
}

async function fill(kafka: Kafka, topic: string, count: number, events: { key: Buffer; value: Buffer }[]): Promise<void> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // (a request's batch per partition must stay under the broker's 1 MB message limit)
  const chunk = 2000;
  for (let sent = 0; sent < count; sent += chunk) {
    const messages = Array.from({ length: Math.min(chunk, count - sent) }, (_, k) => events[(sent + k) % SUBJECTS]);
    await producer.send({ topic, acks: 1, messages });
  }
  await producer.disconnect();
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function main() {
  let broker: LocalKafkaBroker | undefined;
  let localRegistry: LocalSchemaRegistry | undefined;
  try {
    const started = await benchBrokers();
    const { brokers } = started;
    broker = started.broker;
    let url = process.env.SCHEMA_REGISTRY_URL;
    if (!url) {
      localRegistry = new LocalSchemaRegistry({ onProgress: (line) => console.error(`[schema registry] ${line}`) });
      url = await localRegistry.start();
    }
    const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
    const registry = new SchemaRegistry({ host: url });
    const run = randomBytes(3).toString('hex');

    /** A mode's config (its own group, keys and output) on a shared input. */
    const configOn = (topic: string, name: string, extra: Record<string, string> = {}): ShredderConfig => {
      const config = configFor(brokers, name, extra);
      return { ...config, routes: [{ from: topic, to: config.routes[0].to }] };
    };
    /**
     * An input topic holding `count` events, its value schema registered under the serializers' default
     * subject (what the encryptor checks its fields against at its start).
     */
    const input = async (name: string, count: number) => {
      const topic = `bench-registry-${name}-${run}`;
      const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(CUSTOMER_EVENT) }, { subject: `${topic}-value` });
      const events = await encodedEvents(registry, id);
      const template = configOn(topic, 'input');
      await createInput(kafka, template);
      await fill(kafka, topic, count, events);
      return { topic, valueBytes: events.reduce((n, e) => n + e.value.length, 0) / events.length };
    };
    const fieldsEnv = { SHREDDER_SCHEMA_REGISTRY_URL: url, SHREDDER_FIELDS: FIELDS };

    const backlog = await input('in', RECORDS);
    console.log(`Avro field mode: ${RECORDS} records of ${backlog.valueBytes.toFixed(0)} B (registry wire format, ${SUBJECTS} subjects, 3 partitions), fields ${FIELDS}`);
    const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
    // Not measured: one short run of each mode first, so that no mode pays for the JIT compiling
    // kafkajs, avsc's decoders and the shredder's own code.
    const warmup = Number(process.env.BENCH_WARMUP_RECORDS ?? 10_000);
    if (rounds > 0 && warmup > 0) {
      const warm = await input('warm', warmup);
      const warmFields = configOn(warm.topic, 'warm-fields', fieldsEnv);
      await measure(passThrough, configOn(warm.topic, 'warm-pass'), warmup, warm.valueBytes);
      await measure(encryptor, configOn(warm.topic, 'warm-whole'), warmup, warm.valueBytes);
      await measure(encryptor, warmFields, warmup, warm.valueBytes);
      await measure(decryptor, decryptConfigFor(warmFields), warmup, warm.valueBytes);
      console.log(`  (warm-up: ${warmup} records through each mode, not measured)`);
    }

    const name = { pass: 'pass-through', whole: 'encryptor, whole value', fields: 'encryptor, Avro fields', dec: 'decryptor, Avro fields' } as const;
    const runs = { pass: [] as Result[], whole: [] as Result[], fields: [] as Result[], dec: [] as Result[] };
    for (let round = 0; round < rounds; round++) {
      // A-B-B-A: the broker's state drifts during a run, so no mode always goes first; each decryptor
      // run reads what the field-mode run before it wrote
      let lastFields: ShredderConfig | undefined;
      for (const mode of ['pass', 'whole', 'fields', 'dec', 'fields', 'dec', 'whole', 'pass'] as const) {
        let make: (c: ShredderConfig) => Processor = mode === 'pass' ? passThrough : encryptor;
        let config: ShredderConfig;
        if (mode === 'dec') {
          make = decryptor;
          config = decryptConfigFor(lastFields!);
        } else {
          config = configOn(backlog.topic, mode, mode === 'fields' ? fieldsEnv : {});
          if (mode === 'fields') lastFields = config;
        }
        const result = await measure(make, config, RECORDS, backlog.valueBytes);
        console.log(`  ${name[mode]}: ${result.recordsPerSecond.toFixed(0)} records/s, ${result.cpuUsPerRecord.toFixed(1)} us CPU/record, its main thread ${result.mainThreadUsPerRecord.toFixed(1)} us/record`);
        runs[mode].push(result);
      }
    }
    if (rounds === 0) return;

    // medians: one run slowed by something else on a shared machine must not decide the comparison
    const summary = (list: Result[]) => ({
      recordsPerSecond: median(list.map((r) => r.recordsPerSecond)),
      mbPerSecond: median(list.map((r) => r.mbPerSecond)),
      cpuUsPerRecord: median(list.map((r) => r.cpuUsPerRecord)),
      mainThreadUsPerRecord: median(list.map((r) => r.mainThreadUsPerRecord)),
    });
    const pass = summary(runs.pass);
    console.log(`\n${'processor'.padEnd(24)} ${'records/s'.padStart(10)} ${'MB/s'.padStart(7)} ${'node CPU us/rec'.padStart(16)} ${'main us/rec'.padStart(12)} ${'/ pass-through'.padStart(15)}`);
    const rows = Object.fromEntries((['pass', 'whole', 'fields', 'dec'] as const).map((mode) => [mode, summary(runs[mode])]));
    for (const mode of ['pass', 'whole', 'fields', 'dec'] as const) {
      const t = rows[mode];
      console.log(`${name[mode].padEnd(24)} ${t.recordsPerSecond.toFixed(0).padStart(10)} ${t.mbPerSecond.toFixed(1).padStart(7)} ${t.cpuUsPerRecord.toFixed(1).padStart(16)} ${t.mainThreadUsPerRecord.toFixed(1).padStart(12)} ${(t.recordsPerSecond / pass.recordsPerSecond).toFixed(2).padStart(15)}`);
    }
    const { whole, fields, dec } = rows;
    console.log(`\nAvro field mode / whole value (medians): throughput ${(fields.recordsPerSecond / whole.recordsPerSecond).toFixed(2)}; node CPU ${fields.cpuUsPerRecord.toFixed(1)} against ${whole.cpuUsPerRecord.toFixed(1)} us/record; main thread ${fields.mainThreadUsPerRecord.toFixed(1)} against ${whole.mainThreadUsPerRecord.toFixed(1)} us/record`);
    console.log(`decryptor (Avro fields) / encryptor (Avro fields): throughput ${(dec.recordsPerSecond / fields.recordsPerSecond).toFixed(2)}`);
  } finally {
    await localRegistry?.stop();
    await broker?.stop();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
