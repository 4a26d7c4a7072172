// End-to-end benchmark (`npm run bench:e2e`) on a real local Kafka broker: 100k records of 256 bytes
// through (a) a pass-through processor with the same transactions, batching and task layout as the
// encryptor (StreamProcessor with a handler that copies records), (b) the encryptor and (c) the
// decryptor (reading what (b) wrote), in one run; for reference, (d) the pass-through writing each
// value as a new buffer 38 bytes larger, as the encryptor does, but without the cryptography.
// Throughput: a backlog of N records drained from the start of the processor to its last commit.
// Latency: records produced at a steady rate, measured from the input timestamp to the moment a
// read_committed consumer of the output sees them (output records keep the input timestamp).
import '../src/kafka/linear-grouping.js'; // (first: before kafkajs loads, as the CLI does)
import '../src/kafka/record-encoding.js'; // (as early: see there)
import '../src/kafka/record-batch-encoding.js'; // (as early: see there)
import '../src/kafka/produce-request-encoding.js'; // (as early: see there)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { Kafka, logLevel, Partitioners, type Message } from 'kafkajs';
import type { ShredderConfig } from '../src/config/config.js';
import type { LocalKafkaBroker } from '../src/dev/local-broker/index.js';
import { ENVELOPE_OVERHEAD } from '../src/wire/envelope.js';
import { benchBrokers, configFor, createInput, decryptConfigFor, decryptor, encryptor, measure, passThrough, sleep, type Processor, type Result } from './processors.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const VALUE_BYTES = 256;
const SUBJECTS = 1000;
const LATENCY_RATE = Number(process.env.BENCH_LATENCY_RATE ?? 2000); // records per second
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 20); // (a p99 of about 1000 batches a mode, not 500)
const LATENCY_WARMUP_SECONDS = Number(process.env.BENCH_LATENCY_WARMUP_SECONDS ?? 3);
const LATENCY_SLICE_SECONDS = Number(process.env.BENCH_LATENCY_SLICE_SECONDS ?? 2);

const copyingPassThrough = (config: ShredderConfig) => passThrough(config, true);

/** Encryptor and decryptor together (latency of the whole path); batch timings are the decryptor's. */
function encryptThenDecrypt(encrypt: ShredderConfig, decrypt: ShredderConfig): Processor {
  const e = encryptor(encrypt);
  const d = decryptor(decrypt);
  return {
    start: async () => { await e.start(); await d.start(); },
    stop: async () => { await d.stop(); await e.stop(); },
    processed: () => d.processed(),
    batchTimings: () => d.batchTimings(),
  };
}

function records(count: number, from: number): Message[] {
  return Array.from({ length: count }, (_, i) => ({ key: `user-${(from + i) % SUBJECTS}`, value: randomBytes(VALUE_BYTES) }));
}

/** ~1 KB JSON order events with three personal fields (field mode). */
function jsonRecords(count: number, from: number): Message[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return {
      key: `user-${i % SUBJECTS}`,
      value: JSON.stringify({
        orderId: `o-${i}`, email: `person${i % SUBJECTS}@example.org`, address: { street: `${i} Long Street`, city: 'Lyon', zip: '69001' },
        phone: '+33 1 23 45 67 89', items: Array.from({ length: 12 }, (_, n) => ({ sku: `SKU-${n}-${i}`, qty: (n % 3) + 1, price: 9.99 + n })), note: 'x'.repeat(200),
      }),
    };
  });
}
const JSON_FIELDS = '$.email,$.address.street,$.phone';

async function fill(kafka: Kafka, topic: string, count: number, generate = records): Promise<void> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // a request's batch per partition must stay under the broker's 1 MB message limit
  const chunk = generate === records ? 5000 : 1000;
  for (let sent = 0; sent < count; sent += chunk) {
    await producer.send({ topic, acks: 1, messages: generate(Math.min(chunk, count - sent), sent) });
  }
  await producer.disconnect();
}

/** `prefilled`: the input already holds the records (the decryptor reads an encryptor's output). */
async function throughput(kafka: Kafka, make: (c: ShredderConfig) => Processor, config: ShredderConfig, prefilled = false, count = RECORDS, generate = records) {
  if (!prefilled) {
    await createInput(kafka, config);
    await fill(kafka, config.routes[0].from, count, generate);
  }
  return measure(make, config, count, VALUE_BYTES);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** One processor of the latency phase: its input, the topic where read_committed readers see its output, and what they saw. */
interface LatencyMode {
  input: string;
  output: string;
  processor: Processor;
  /** Input timestamp to visibility of each record seen since the last reset, in ms. */
  latencies: number[];
  /** Records sent to the input since the last reset. */
  sent: number;
}

type LatencyResult = { p50: number; p99: number; count: number; handlerP50: number; handlerP99: number };

/**
 * Latency of every mode, interleaved: all processors run at once, and their inputs get the steady
 * rate in turn, LATENCY_SLICE_SECONDS each, round-robin until each mode has had LATENCY_SECONDS. Only one
 * processor works at a time, so no mode's work delays another's, while each one's measurements are
 * spread over the same minutes: what the other tenants of this machine, the broker's log cleaner or a
 * JIT recompilation do then is shared by all modes instead of landing on whichever ran at that moment.
 * `configs`: each mode's config and how to make its processor; `output`: the topic its readers watch.
 */
async function latencies(kafka: Kafka, configs: Record<string, { config: ShredderConfig; make: (c: ShredderConfig) => Processor; output?: string }>) {
  const modes: Record<string, LatencyMode> = {};
  const consumers = [];
  for (const [name, { config, make, output }] of Object.entries(configs)) {
    await createInput(kafka, config);
    const mode: LatencyMode = { input: config.routes[0].from, output: output ?? config.routes[0].to, processor: make(config), latencies: [], sent: 0 };
    await mode.processor.start();
    const consumer = kafka.consumer({ groupId: `${config.groupId}-latency`, maxWaitTimeInMs: 20 });
    await consumer.connect();
    await consumer.subscribe({ topic: mode.output, fromBeginning: true });
    await consumer.run({ eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const m of batch.messages) mode.latencies.push(now - Number(m.timestamp));
    } });
    consumers.push(consumer);
    modes[name] = mode;
  }
  await sleep(3000); // every group settled, tasks restored
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const perTick = Math.max(1, Math.round(LATENCY_RATE / 50));
  const caughtUp = async (mode: LatencyMode) => {
    while (mode.latencies.length < mode.sent) await sleep(20);
  };
  /** The steady rate into one mode's input for `seconds`, then until its output has caught up. */
  const steady = async (mode: LatencyMode, seconds: number) => {
    const total = perTick * 50 * seconds;
    for (let sent = 0; sent < total; sent += perTick) {
      const tick = Date.now();
      await producer.send({ topic: mode.input, acks: 1, messages: records(perTick, sent) });
      mode.sent += perTick;
      await sleep(Math.max(0, 20 - (Date.now() - tick)));
    }
    await caughtUp(mode);
  };
  const reset = (mode: LatencyMode) => {
    mode.latencies.length = 0;
    mode.sent = 0;
    mode.processor.batchTimings().length = 0;
  };
  const all = Object.values(modes);
  // warm: every subject has its key (a subject's first record also creates and wraps its key)
  for (const mode of all) {
    await producer.send({ topic: mode.input, acks: 1, messages: records(SUBJECTS, 0) });
    mode.sent += SUBJECTS;
  }
  for (const mode of all) await caughtUp(mode);
  // and at the steady rate for a while, not measured: the JIT compiles the small-batch paths in the
  // first seconds, which would otherwise make the first seconds' batches the p99 of every mode
  for (const mode of all) await steady(mode, LATENCY_WARMUP_SECONDS);
  all.forEach(reset);
  const slices = Math.max(1, Math.round(LATENCY_SECONDS / LATENCY_SLICE_SECONDS));
  for (let slice = 0; slice < slices; slice++) for (const mode of all) await steady(mode, LATENCY_SECONDS / slices);
  await producer.disconnect();
  const results: Record<string, LatencyResult> = {};
  for (const [name, mode] of Object.entries(modes)) {
    if (process.env.BENCH_SLOWEST) {
      const slowest = [...mode.processor.batchTimings()].sort((a, b) => b.ms - a.ms).slice(0, Number(process.env.BENCH_SLOWEST));
      console.log(`  ${name}: slowest batches (ms, records): ${slowest.map((t) => `${t.ms.toFixed(2)} (${t.records})`).join(', ')}`);
    }
    const handler = mode.processor.batchTimings().map((t) => t.ms).sort((a, b) => a - b);
    const sorted = mode.latencies.sort((a, b) => a - b);
    results[name] = { p50: percentile(sorted, 50), p99: percentile(sorted, 99), count: sorted.length, handlerP50: percentile(handler, 50), handlerP99: percentile(handler, 99) };
  }
  for (const consumer of consumers) await consumer.disconnect();
  for (const mode of all) await mode.processor.stop();
  return results;
}

/**
 * BENCH_PIN=1, with two or more CPUs: this process (all its threads, garbage collection included) goes
 * on CPU 0 and the broker on CPU 1, so that a mode's throughput reflects its whole cost and not how the
 * scheduler shared the cores with the broker in that run (unpinned, single runs of one mode vary by
 * +-30%). Off by default: a sidecar shares its cores, and pinned, GC threads also lengthen p99.
 */
function pinToSeparateCpus(broker: LocalKafkaBroker): void {
  const supervisor = broker.processId;
  if (process.env.BENCH_PIN !== '1' || cpus().length < 2 || supervisor === undefined) return;
  try {
    const brokerPids = [supervisor, ...execFileSync('pgrep', ['-P', String(supervisor)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)];
    for (const pid of brokerPids) execFileSync('taskset', ['-a', '-pc', '1', String(pid)], { stdio: 'ignore' });
    execFileSync('taskset', ['-a', '-pc', '0', String(process.pid)], { stdio: 'ignore' });
    console.log('pinned (BENCH_PIN=1): this process on CPU 0, the broker on CPU 1');
  } catch {
    console.log('not pinned (no taskset here): processes share the CPUs, expect more noise');
  }
}

async function main() {
  const { brokers, broker } = await benchBrokers();
  if (broker) pinToSeparateCpus(broker);
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  try {
    console.log(`end-to-end: ${RECORDS} records of ${VALUE_BYTES} B, ${SUBJECTS} subjects, 3 partitions, transactions per batch`);
    // A-B-B-A, BENCH_ROUNDS times (default 3): the broker's state drifts during a run and it shares
    // the cores with us, so neither mode always goes first; each mode's figures are the median of its runs.
    const runs = { pass: [] as Result[], copy: [] as Result[], enc: [] as Result[], dec: [] as Result[] };
    const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
    // Not measured: one short run of each mode first, so that no mode pays for the JIT compiling
    // kafkajs and its own code (otherwise the first pass-through run is the slowest of all).
    const warmup = Number(process.env.BENCH_WARMUP_RECORDS ?? 20_000);
    if (rounds > 0 && warmup > 0) {
      const warmEncrypt = configFor(brokers, 'warm-enc');
      await throughput(kafka, passThrough, configFor(brokers, 'warm-pass'), false, warmup);
      await throughput(kafka, copyingPassThrough, configFor(brokers, 'warm-copy'), false, warmup);
      await throughput(kafka, encryptor, warmEncrypt, false, warmup);
      await throughput(kafka, decryptor, decryptConfigFor(warmEncrypt), true, warmup);
      console.log(`  (warm-up: ${warmup} records through each mode, not measured)`);
    }
    const name = { pass: 'pass-through', copy: 'copying pass', enc: 'encryptor', dec: 'decryptor' } as const;
    for (let round = 0; round < rounds; round++) {
      // each decryptor run reads the encrypted log the encryptor run before it wrote
      let lastEncrypt: ShredderConfig | undefined;
      for (const mode of ['pass', 'copy', 'enc', 'dec', 'enc', 'dec', 'copy', 'pass'] as const) {
        let result: Result;
        if (mode === 'dec') {
          result = await throughput(kafka, decryptor, decryptConfigFor(lastEncrypt!), true);
        } else {
          const config = configFor(brokers, mode);
          if (mode === 'enc') lastEncrypt = config;
          result = await throughput(kafka, mode === 'pass' ? passThrough : mode === 'copy' ? copyingPassThrough : encryptor, config);
        }
        console.log(`  ${name[mode]}: ${result.recordsPerSecond.toFixed(0)} records/s, ${result.cpuUsPerRecord.toFixed(1)} us CPU/record, main thread busy ${(100 * result.mainThreadBusy).toFixed(0)}%, its CPU ${result.mainThreadUsPerRecord.toFixed(1)} us/record, waiting for a CPU ${result.mainThreadWaitUsPerRecord.toFixed(1)} us/record`);
        runs[mode].push(result);
      }
    }
    // Medians, not means: one run slowed by something else on this shared 2-core machine (the broker's
    // log cleaner, another process) must not decide the comparison.
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    const mean = (list: Result[]) => ({
      recordsPerSecond: median(list.map((r) => r.recordsPerSecond)),
      mbPerSecond: median(list.map((r) => r.mbPerSecond)),
      cpuUsPerRecord: median(list.map((r) => r.cpuUsPerRecord)),
      mainThreadUsPerRecord: median(list.map((r) => r.mainThreadUsPerRecord)),
      mainThreadWaitUsPerRecord: median(list.map((r) => r.mainThreadWaitUsPerRecord)),
      seconds: list.reduce((n, r) => n + r.seconds, 0),
    });
    const base = mean(runs.pass);
    const copy = mean(runs.copy);
    const enc = mean(runs.enc);
    const dec = mean(runs.dec);
    console.log(`latency: ${LATENCY_RATE} records/s, ${LATENCY_SECONDS} s per mode in ${LATENCY_SLICE_SECONDS} s slices taken in turn, after ${LATENCY_WARMUP_SECONDS} s of warm-up; input timestamp to read_committed output`);
    const chainEncrypt = configFor(brokers, 'chain-lat');
    const chainDecrypt = decryptConfigFor(chainEncrypt);
    const latency = await latencies(kafka, {
      pass: { config: configFor(brokers, 'pass-lat'), make: passThrough },
      enc: { config: configFor(brokers, 'enc-lat'), make: encryptor },
      chain: { config: chainEncrypt, make: (c) => encryptThenDecrypt(c, chainDecrypt), output: chainDecrypt.routes[0].to },
    });
    const [baseLatency, encLatency, decLatency] = [latency.pass, latency.enc, latency.chain];
    /** `l` undefined: a mode without a latency phase. */
    const row = (label: string, t: typeof base, l?: typeof baseLatency) =>
      `${label.padEnd(14)} ${t.recordsPerSecond.toFixed(0).padStart(10)} ${t.mbPerSecond.toFixed(1).padStart(8)} ${t.cpuUsPerRecord.toFixed(1).padStart(12)}` +
      (l ? ` ${String(l.p50).padStart(8)} ${String(l.p99).padStart(8)}` : '');
    // the broker shares this machine: the processor's own CPU per record is the cost it imposes
    console.log(`\n${'processor'.padEnd(14)} ${'records/s'.padStart(10)} ${'MB/s'.padStart(8)} ${'node CPU us/rec'.padStart(12)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`);
    console.log(row('pass-through', base, baseLatency));
    console.log(row('copying pass', copy) + `   (values copied ${ENVELOPE_OVERHEAD} B larger, no cryptography)`);
    console.log(row('encryptor', enc, encLatency));
    console.log(row('decryptor', dec, decLatency) + '   (latency: through the encryptor and the decryptor)');
    const fmt = (n: number) => n.toFixed(3);
    for (const [label, t] of [['encryptor', enc], ['decryptor', dec]] as const) {
      const ratio = t.recordsPerSecond / base.recordsPerSecond;
      const cpuRatio = base.cpuUsPerRecord / t.cpuUsPerRecord;
      console.log(`\n${label} throughput / pass-through (medians): ${ratio.toFixed(3)} (target >= 0.90): ${ratio >= 0.9 ? 'met' : 'NOT met'}; by the processor's own CPU per record: ${cpuRatio.toFixed(3)}`);
      console.log(`  by the main thread's CPU per record (it bounds throughput; without the scheduling noise): ${(base.mainThreadUsPerRecord / t.mainThreadUsPerRecord).toFixed(3)} (${t.mainThreadUsPerRecord.toFixed(1)} against ${base.mainThreadUsPerRecord.toFixed(1)} us); its wait for a CPU: ${t.mainThreadWaitUsPerRecord.toFixed(1)} against ${base.mainThreadWaitUsPerRecord.toFixed(1)} us/record`);
      console.log(`  against the copying pass-through (the cost of the cryptography alone): throughput ${(t.recordsPerSecond / copy.recordsPerSecond).toFixed(2)}, CPU per record ${(copy.cpuUsPerRecord / t.cpuUsPerRecord).toFixed(2)}; the copying pass-through itself: ${(copy.recordsPerSecond / base.recordsPerSecond).toFixed(2)} of the pass-through`);
    }
    console.log(`end-to-end latency difference (encryptor - pass-through): p50 ${encLatency.p50 - baseLatency.p50} ms, p99 ${encLatency.p99 - baseLatency.p99} ms (broker and scheduling noise on this machine is larger than the difference)`);
    // Every record of a batch waits for the handler of its batch: the handler's time is exactly
    // what a processor adds to a record's latency over the pass-through, measured without the noise.
    console.log(`batch handler time at ${LATENCY_RATE} records/s: pass-through p50 ${fmt(baseLatency.handlerP50)} ms p99 ${fmt(baseLatency.handlerP99)} ms; encryptor p50 ${fmt(encLatency.handlerP50)} ms p99 ${fmt(encLatency.handlerP99)} ms; decryptor p50 ${fmt(decLatency.handlerP50)} ms p99 ${fmt(decLatency.handlerP99)} ms`);
    for (const [label, l] of [['encryptor', encLatency], ['decryptor', decLatency]] as const) {
      const added = l.handlerP99 - baseLatency.handlerP99;
      console.log(`${label}: added latency per record at p99 (handler time): ${fmt(added)} ms (target < 1 ms): ${added < 1 ? 'met' : 'NOT met'}`);
    }

    if (process.env.BENCH_FIELDS !== '0') {
      // field mode: the encryptor sealing 3 fields of ~1 KB JSON records against sealing them whole
      const jsonCount = Number(process.env.BENCH_JSON_RECORDS ?? 30_000);
      const bytes = Buffer.byteLength(jsonRecords(1, 0)[0].value as string);
      console.log(`\nfield mode: ${jsonCount} JSON records of ${bytes} B, fields ${JSON_FIELDS}, against whole values (A-B-B-A)`);
      const json = { whole: [] as Result[], fields: [] as Result[] };
      for (const mode of ['whole', 'fields', 'fields', 'whole'] as const) {
        const config = configFor(brokers, `json-${mode}`, mode === 'fields' ? { SHREDDER_FIELDS: JSON_FIELDS } : {});
        const result = await throughput(kafka, encryptor, config, false, jsonCount, jsonRecords);
        console.log(`  encryptor, ${mode === 'fields' ? '3 fields' : 'whole value'}: ${result.recordsPerSecond.toFixed(0)} records/s`);
        json[mode].push(result);
      }
      const whole = mean(json.whole);
      const fieldsMean = mean(json.fields);
      console.log(`field mode (medians): ${fieldsMean.recordsPerSecond.toFixed(0)} records/s, whole value: ${whole.recordsPerSecond.toFixed(0)} records/s; ratio ${(fieldsMean.recordsPerSecond / whole.recordsPerSecond).toFixed(2)}; node CPU ${fieldsMean.cpuUsPerRecord.toFixed(1)} against ${whole.cpuUsPerRecord.toFixed(1)} us/record`);
    }
  } finally {
    await broker?.stop();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
