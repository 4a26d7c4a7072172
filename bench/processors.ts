// What the end-to-end benchmarks on the local broker share (bench/e2e.bench.ts,
// bench/registry-fields.bench.ts): the processors they compare, their configs, and the measurement of
// one throughput run.
import '../src/kafka/linear-grouping.js'; // (first: before kafkajs loads, as the CLI does)
import '../src/kafka/record-encoding.js'; // (as early: see there)
import '../src/kafka/record-batch-encoding.js'; // (as early: see there)
import '../src/kafka/produce-request-encoding.js'; // (as early: see there)
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka, Message } from 'kafkajs';
import { loadConfig, type ShredderConfig } from '../src/config/config.js';
import { LocalKafkaBroker } from '../src/dev/local-broker/index.js';
import { Decryptor } from '../src/decryptor/decryptor.js';
import { Encryptor } from '../src/encryptor/encryptor.js';
import { createKafka } from '../src/kafka/client.js';
import { encryptorTopicRoles, ensureTopics } from '../src/kafka/topics.js';
import { openKeyring } from '../src/keys/key-providers.js';
import { createLogger } from '../src/observability/logger.js';
import { ENVELOPE_HEADER_BYTES, ENVELOPE_OVERHEAD } from '../src/wire/envelope.js';
import { StreamProcessor } from '../src/processor/stream-processor.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The brokers of KAFKA_BROKERS, or else of a local broker started here (returned, for the caller to stop). */
export async function benchBrokers(): Promise<{ brokers: string[]; broker?: LocalKafkaBroker }> {
  const given = process.env.KAFKA_BROKERS?.split(',');
  if (given) return { brokers: given };
  const broker = new LocalKafkaBroker({ onProgress: (line) => console.error(`[kafka] ${line}`) });
  return { brokers: await broker.start(), broker };
}
const logger = createLogger('warn');

export interface Processor {
  start(): Promise<void>;
  stop(): Promise<void>;
  processed(): number;
  batchTimings(): { ms: number; records: number }[];
}

export function configFor(brokers: string[], name: string, extra: Record<string, string> = {}): ShredderConfig {
  const run = randomBytes(3).toString('hex');
  return loadConfig('encrypt', {
    ...extra,
    KAFKA_BROKERS: brokers.join(','),
    SHREDDER_ROUTES: `bench-${name}-in-${run}->bench-${name}-out-${run}`,
    SHREDDER_KEYS_TOPIC: `bench-${name}-keys-${run}`,
    SHREDDER_DLQ_TOPIC: `bench-${name}-dlq-${run}`,
    SHREDDER_GROUP_ID: `bench-${name}-${run}`,
    SHREDDER_MASTER_KEY: randomBytes(32).toString('base64'),
    SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-bench-')),
    SHREDDER_LOG_LEVEL: 'warn',
  });
}

/**
 * A copy of `value` with ENVELOPE_OVERHEAD more bytes, in 64 KiB slabs like the crypto core's results:
 * the output an encryptor writes, without the encryption.
 */
const copyWithOverhead = (() => {
  let slab = new Uint8Array(0);
  let used = 0;
  return (value: Buffer | null): Buffer | null => {
    if (value === null) return null;
    const bytes = value.length + ENVELOPE_OVERHEAD;
    if (used + bytes > slab.length) {
      slab = new Uint8Array(Math.max(64 * 1024, bytes));
      used = 0;
    }
    slab.set(value, used + ENVELOPE_HEADER_BYTES);
    const copy = Buffer.from(slab.buffer, used, bytes);
    used += bytes;
    return copy;
  };
})();

/**
 * The baseline: same StreamProcessor, transactions and task layout, records copied unchanged.
 * `copyValues`: each value is written as a new buffer as large as its envelope would be (the
 * reference that shows what writing new, larger records costs, apart from the cryptography).
 */
export function passThrough(config: ShredderConfig, copyValues = false): Processor {
  const kafka = createKafka(config.kafka, logger);
  let processed = 0;
  const route = config.routes[0];
  let processor: StreamProcessor | undefined;
  return {
    async start() {
      const admin = kafka.admin();
      await admin.connect();
      const layout = await ensureTopics(admin, config, encryptorTopicRoles(config.routes), logger);
      await admin.disconnect();
      processor = new StreamProcessor({
        name: 'pass-through',
        kafka,
        inputs: [route.from],
        keysTopic: config.keysTopic,
        groupId: config.groupId,
        stateDir: config.stateDir,
        masterKey: openKeyring(config.keys).keyring,
        checkpointMaxAgeMs: layout.keysTombstoneRetentionMs,
        logger,
        // (synchronous, like the encryptor's and decryptor's handlers when their keys are in memory)
        handler: (batch) => ({
          topicMessages: [{
            topic: route.to,
            messages: batch.messages.map((m): Message => ({ key: m.key, value: copyValues ? copyWithOverhead(m.value) : m.value, partition: batch.partition, timestamp: m.timestamp, headers: m.headers })),
          }],
          committed: async () => { processed += batch.messages.length; },
        }),
      });
      await processor.start();
    },
    stop: () => processor!.stop(),
    processed: () => processed,
    batchTimings: () => processor!.batchTimings,
  };
}

/** The decryptor of an encryptor's output: same keys topic and master key, its own group and state. */
export function decryptConfigFor(encrypt: ShredderConfig): ShredderConfig {
  const run = randomBytes(3).toString('hex');
  return {
    ...encrypt,
    command: 'decrypt',
    routes: [{ from: encrypt.routes[0].to, to: `bench-dec-out-${run}` }],
    groupId: `bench-dec-${run}`,
    stateDir: mkdtempSync(join(tmpdir(), 'shredder-bench-')),
  };
}

export function decryptor(config: ShredderConfig): Processor {
  const d = new Decryptor(config, logger);
  return { start: () => d.start(), stop: () => d.stop(), processed: () => d.stats.recordsOut, batchTimings: () => d.batchTimings };
}

export function encryptor(config: ShredderConfig): Processor {
  const e = new Encryptor(config, logger);
  return { start: () => e.start(), stop: () => e.stop(), processed: () => e.stats.recordsOut, batchTimings: () => e.batchTimings };
}

export async function createInput(kafka: Kafka, config: ShredderConfig): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config, encryptorTopicRoles(config.routes), logger);
  await admin.disconnect();
}

/**
 * Throughput of one run of the processor `make` makes on `config`, whose input already holds `count`
 * records (`valueBytes` each, on average, for MB/s).
 */
export async function measure(make: (c: ShredderConfig) => Processor, config: ShredderConfig, count: number, valueBytes: number) {
  const RECORDS = count;
  // every run starts from the same heap (the bench:e2e and bench:registry scripts pass --expose-gc): otherwise a run after
  // one that grew the young generation pays for fewer collections than a run after one that did not
  (globalThis as { gc?: () => void }).gc?.();
  const processor = make(config);
  await processor.start();
  // from the first committed batch to the last, so group joins and start-up do not count
  while (processor.processed() === 0) await sleep(1);
  const first = processor.processed();
  const stopProfile = await profileRun(make.name);
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const eluBefore = performance.eventLoopUtilization();
  const schedBefore = mainThreadSchedstat();
  while (processor.processed() < RECORDS) await sleep(5);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const mainThreadBusy = performance.eventLoopUtilization(eluBefore).utilization;
  const schedAfter = mainThreadSchedstat();
  await stopProfile();
  const measured = RECORDS - first;
  const cpuUsPerRecord = (cpu.user + cpu.system) / measured;
  // (NaN without scheduler statistics)
  const mainThreadUsPerRecord = schedBefore && schedAfter ? (schedAfter.runNs - schedBefore.runNs) / 1e3 / measured : NaN;
  const mainThreadWaitUsPerRecord = schedBefore && schedAfter ? (schedAfter.waitNs - schedBefore.waitNs) / 1e3 / measured : NaN;
  await processor.stop();
  return { recordsPerSecond: measured / seconds, mbPerSecond: (measured * valueBytes) / seconds / 1e6, seconds, cpuUsPerRecord, mainThreadBusy, mainThreadUsPerRecord, mainThreadWaitUsPerRecord };
}

export type Result = Awaited<ReturnType<typeof measure>>;

/**
 * BENCH_PROFILE=<folder>: a CPU profile of the main thread during each throughput run, written as
 * <folder>/<mode>-<n>.cpuprofile (for chrome://inspect or any .cpuprofile reader). Returns its stop.
 */
async function profileRun(mode: string): Promise<() => Promise<void>> {
  const folder = process.env.BENCH_PROFILE;
  if (!folder) return async () => {};
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(folder, `${mode}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}

/**
 * The main thread's time on a CPU and waiting for one (a runnable thread another thread preempted),
 * in ns, from the kernel's scheduler statistics; undefined where /proc has none. The main thread bounds
 * a processor's throughput: its CPU time per record is the processor's cost without this shared
 * machine's scheduling noise, and its wait shows how much the broker and other threads took from it.
 */
function mainThreadSchedstat(): { runNs: number; waitNs: number } | undefined {
  try {
    const [runNs, waitNs] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { runNs, waitNs };
  } catch {
    return undefined;
  }
}
