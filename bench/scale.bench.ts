// Scale benchmark (`npm run bench:scale`) on a real local Kafka broker (or KAFKA_BROKERS): what a real
// user base costs. BENCH_SUBJECTS (default 1,000,000) distinct subjects on 3 partitions:
//   1. N records, one per new subject (100 B values), produced in large batches (reported apart);
//   2. the encryptor over them from an empty state dir: every record creates, wraps and writes a key;
//   3. two rounds of BENCH_KNOWN more records (default 240k, the same random sample of those subjects,
//      all keyed) through a new encryptor on the same group and state dir: the first round finds its
//      keys in the store (a new instance's cache is empty), the second in memory (the sample fits the
//      cache of 100k subjects a partition): the rates of records of known subjects, cold and warm;
//   4. time to ready of a restart on the kept state dir, and of a new instance on an empty state dir
//      (a full restore of the keys topic), against a plain kafkajs read of the same keys topic;
//   5. the resident set and heap while holding N keys and after the restore, and the state dir on disk;
//   6. the memory a cached key holds (a partition's key cache filled to its bound), and a subject in the
//      encryptor's table of subjects ready for the sealing thread.
// BENCH_PROFILE=<folder>: CPU profiles of phases 2 and 3 (see bench/processors.ts) and of the restore.
import '../src/kafka/linear-grouping.js'; // (first: before kafkajs loads, as the CLI does)
import '../src/kafka/record-encoding.js'; // (as early: see there)
import '../src/kafka/record-batch-encoding.js'; // (as early: see there)
import '../src/kafka/produce-request-encoding.js'; // (as early: see there)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, Partitioners, type Message } from 'kafkajs';
import type { ShredderConfig } from '../src/config/config.js';
import { Encryptor } from '../src/encryptor/encryptor.js';
import { createLogger } from '../src/observability/logger.js';
import { benchBrokers, configFor, createInput, measure, sleep, type Processor } from './processors.js';

const SUBJECTS = Number(process.env.BENCH_SUBJECTS ?? 1_000_000);
// (80k a partition: under PartitionKeys' cache of 100k, so that the second round is all in memory)
const KNOWN = Math.min(SUBJECTS, Number(process.env.BENCH_KNOWN ?? 240_000));
const VALUE_BYTES = 100;
/** Records per produce request: 3 partitions' batches of ~5k records of ~130 B stay under the broker's 1 MB limit. */
const PRODUCE_CHUNK = 15_000;
/** Produce requests in flight at once: producing is set-up, not what is measured, so it should be quick. */
const PRODUCE_IN_FLIGHT = 4;
/** A processor that is not ready after this long has a problem worth failing the run for. */
const READY_TIMEOUT_MS = Number(process.env.BENCH_READY_TIMEOUT_MS ?? 600_000);
const logger = createLogger('warn');
const MB = 1024 * 1024;

const subjectOf = (i: number) => `subject-${String(i).padStart(8, '0')}`;

interface Memory { rss: number; heapUsed: number; external: number }

/** After a full collection (--expose-gc), so that heapUsed is what is held, not garbage. */
function memory(): Memory {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed, external } = process.memoryUsage();
  return { rss, heapUsed, external };
}

function diskBytes(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

/** Produces one record per subject index, in large requests several at a time; returns records/s. */
async function produce(kafka: Kafka, topic: string, subjects: ArrayLike<number>): Promise<number> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < subjects.length) {
      const from = next;
      const count = Math.min(PRODUCE_CHUNK, subjects.length - from);
      next += count;
      // (one random slab a request: values need not differ in content, only be incompressible)
      const slab = randomBytes(count * VALUE_BYTES);
      const messages: Message[] = new Array(count);
      for (let i = 0; i < count; i++) messages[i] = { key: subjectOf(subjects[from + i]), value: slab.subarray(i * VALUE_BYTES, (i + 1) * VALUE_BYTES) };
      await producer.send({ topic, acks: 1, messages });
    }
  };
  await Promise.all(Array.from({ length: PRODUCE_IN_FLIGHT }, worker));
  const seconds = (performance.now() - started) / 1000;
  await producer.disconnect();
  return subjects.length / seconds;
}

/** `count` distinct subject indices below `of`, in random order (a partial Fisher-Yates shuffle). */
function sample(count: number, of: number): Int32Array {
  const all = Int32Array.from({ length: of }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(Math.random() * (of - i));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.subarray(0, count);
}

/**
 * An encryptor as bench/processors.ts makes one, that also tells its key count, when it was ready and
 * when it first reached each of `marks` records (measure() polls processed() every few ms), with the
 * process's CPU time then, and its memory just before it stops (its keys still held). Ready to the last
 * mark is the run's rate: measure()'s "first batch to last" leaves out the first batches, up to 4 MiB a
 * partition (about 90k records of 100 B on 3 partitions), which are seconds of work each when every
 * record is a new subject.
 */
function observed(config: ShredderConfig, marks: number[]) {
  const e = new Encryptor(config, logger);
  const now = () => ({ at: performance.now(), cpu: process.cpuUsage() });
  const run = {
    startedAt: 0, ready: undefined as ReturnType<typeof now> | undefined, reached: [] as ReturnType<typeof now>[], before: undefined as Memory | undefined,
    keysCreated: () => e.stats.keysCreated,
    /** Records/s and CPU us/record from mark i - 1 (or ready) to mark i. */
    leg: (i: number) => {
      const from = i === 0 ? run.ready! : run.reached[i - 1];
      const to = run.reached[i];
      const records = marks[i] - (i === 0 ? 0 : marks[i - 1]);
      const cpuUs = to.cpu.user + to.cpu.system - from.cpu.user - from.cpu.system;
      return { perSecond: records / ((to.at - from.at) / 1000), cpuUsPerRecord: cpuUs / records };
    },
  };
  const processor: Processor = {
    start: () => {
      run.startedAt = performance.now();
      return e.start();
    },
    stop: async () => {
      run.before = memory();
      await e.stop();
    },
    processed: () => {
      if (run.ready === undefined && e.readiness().ready) run.ready = now();
      const n = e.stats.recordsOut;
      while (run.reached.length < marks.length && n >= marks[run.reached.length]) run.reached.push(now());
      return n;
    },
    batchTimings: () => e.batchTimings,
  };
  return { processor, run };
}

/** BENCH_PROFILE=<folder>: a CPU profile of `work`, written as <folder>/<name>-<time>.cpuprofile. */
async function profiled<T>(name: string, work: () => Promise<T>): Promise<T> {
  const folder = process.env.BENCH_PROFILE;
  if (!folder) return work();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(folder, `${name}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/** Time from start to ready (every partition's keys restored), with what the tasks report of their restores. */
async function timeToReady(config: ShredderConfig) {
  const e = new Encryptor(config, logger);
  const started = performance.now();
  await e.start(); // (e.failed exists once start() has made the stream processor)
  let joinedAt: number | undefined;
  while (!e.readiness().ready) {
    if (joinedAt === undefined && e.readiness().joinedGroup) joinedAt = performance.now();
    if (performance.now() - started > READY_TIMEOUT_MS) throw new Error(`not ready after ${READY_TIMEOUT_MS} ms: ${JSON.stringify(e.readiness())}`);
    await Promise.race([sleep(5), e.failed]);
  }
  const readyAt = performance.now();
  const restores = [...e.restores];
  const held = memory();
  await e.stop();
  return { seconds: (readyAt - started) / 1000, afterJoinSeconds: (readyAt - (joinedAt ?? readyAt)) / 1000, restores, held };
}

/**
 * The baseline of a restore: a plain kafkajs consumer (new group, read_committed like the restore)
 * reading every partition of the keys topic to its end with large fetches, counting records; from
 * connect to the last record.
 */
async function plainRead(kafka: Kafka, topic: string, expected: number) {
  const consumer = kafka.consumer({
    groupId: `bench-plain-${randomBytes(3).toString('hex')}`,
    maxBytes: 50 * MB,
    maxBytesPerPartition: 10 * MB,
    maxWaitTimeInMs: 100,
    readUncommitted: false,
  });
  const started = performance.now();
  let joinedAt = started;
  consumer.on(consumer.events.GROUP_JOIN, () => { joinedAt = performance.now(); });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let records = 0;
  let done!: () => void;
  const read = new Promise<void>((resolve) => { done = resolve; });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      records += batch.messages.length;
      if (records >= expected) done();
    },
  });
  const timeout = sleep(READY_TIMEOUT_MS).then(() => { throw new Error(`plain read: ${records} of ${expected} records after ${READY_TIMEOUT_MS} ms`); });
  await Promise.race([read, timeout]);
  const endedAt = performance.now();
  await consumer.disconnect();
  return { seconds: (endedAt - started) / 1000, afterJoinSeconds: (endedAt - joinedAt) / 1000, records };
}

/** The memory one cached key holds, measured in a process of its own (bench/key-cache-cost.ts). */
function cachedKeyCost(): { keys: number; heapPerKey: number; externalPerKey: number; rssPerKey: number; readyHeapPerKey: number; readyRssPerKey: number } {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'key-cache-cost.js');
  return JSON.parse(execFileSync(process.execPath, ['--expose-gc', script], { encoding: 'utf8' }));
}

async function main() {
  const { brokers, broker } = await benchBrokers();
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const stateDirs: string[] = [];
  const config = configFor(brokers, 'scale');
  stateDirs.push(config.stateDir);
  try {
    const mb = (bytes: number) => (bytes / MB).toFixed(1);
    const rate = (n: number) => Math.round(n).toLocaleString('en-US');
    const start = memory();
    console.log(`scale: ${SUBJECTS.toLocaleString('en-US')} subjects, 3 partitions, values of ${VALUE_BYTES} B; ${KNOWN.toLocaleString('en-US')} records of known subjects`);
    console.log(`  at start: rss ${mb(start.rss)} MB, heap ${mb(start.heapUsed)} MB`);

    // 1. one record per new subject
    await createInput(kafka, config);
    const input = config.routes[0].from;
    const produced = await produce(kafka, input, Int32Array.from({ length: SUBJECTS }, (_, i) => i));
    console.log(`1. produced ${SUBJECTS.toLocaleString('en-US')} records of new subjects: ${rate(produced)} records/s (set-up, not measured)`);

    // 2. new subjects: every record creates a key
    const fresh = observed(config, [SUBJECTS]);
    const newSubjects = (_: ShredderConfig) => fresh.processor;
    const created = await measure(newSubjects, config, SUBJECTS, VALUE_BYTES);
    const createdWall = (fresh.run.reached[0].at - fresh.run.startedAt) / 1000;
    if (fresh.run.keysCreated() !== SUBJECTS) throw new Error(`${fresh.run.keysCreated()} keys created, not ${SUBJECTS}`);
    const newLeg = fresh.run.leg(0);
    const newRate = newLeg.perSecond;
    console.log(`2. new subjects: ${rate(newRate)} records/s (= new keys/s, ready to last record; first batch to last ${rate(created.recordsPerSecond)}), ${createdWall.toFixed(1)} s from start; ${newLeg.cpuUsPerRecord.toFixed(1)} us CPU/record, main thread busy ${(100 * created.mainThreadBusy).toFixed(0)}%`);

    // 3. known subjects, same group and state dir: a restart that goes on where phase 2 stopped; the
    // same sample twice, both rounds produced first, so that the encryptor drains one backlog
    const knownSample = sample(KNOWN, SUBJECTS);
    const knownProduced = await produce(kafka, input, knownSample);
    await produce(kafka, input, knownSample);
    console.log(`   produced 2 x ${KNOWN.toLocaleString('en-US')} records of known subjects (a random sample, random order, twice): ${rate(knownProduced)} records/s`);
    const again = observed(config, [KNOWN, 2 * KNOWN]);
    const knownSubjects = (_: ShredderConfig) => again.processor;
    const known = await measure(knownSubjects, config, 2 * KNOWN, VALUE_BYTES);
    if (again.run.keysCreated() !== 0) throw new Error(`${again.run.keysCreated()} keys created for known subjects`);
    const held = again.run.before!;
    const [cold, warm] = [again.run.leg(0), again.run.leg(1)];
    const knownRate = warm.perSecond;
    // (the rounds overlap a little: a partition that finished its first round starts its second while another is still in its first)
    console.log(`3. known subjects, keys in the store (first round): ${rate(cold.perSecond)} records/s, ${cold.cpuUsPerRecord.toFixed(1)} us CPU/record`);
    console.log(`   known subjects, keys in memory (second round): ${rate(warm.perSecond)} records/s, ${warm.cpuUsPerRecord.toFixed(1)} us CPU/record; main thread busy ${(100 * known.mainThreadBusy).toFixed(0)}% over both`);
    const newOverKnown = newRate / knownRate;
    console.log(`   new / known in memory: ${newOverKnown.toFixed(2)} (target >= 0.5); new / known in the store: ${(newRate / cold.perSecond).toFixed(2)}`);
    const keptDisk = diskBytes(config.stateDir);

    // 4. restarts: on the kept state dir, then a new instance on an empty one (the same group, whose
    // input is all committed, as a replaced pod: nothing to process, only the keys to restore)
    const restart = await timeToReady(config);
    console.log(`4. restart on the kept state dir: ready in ${restart.seconds.toFixed(2)} s (${restart.restores.reduce((n, r) => n + r.records, 0)} key records read)`);
    const keysTopic = config.keysTopic;
    // the baseline before and after the restore: the broker's page cache and JIT are then no one's advantage
    const plain1 = await plainRead(kafka, keysTopic, SUBJECTS);
    console.log(`   plain kafkajs read of the keys topic: ${rate(plain1.records / plain1.seconds)} keys/s, ${plain1.seconds.toFixed(2)} s (${plain1.afterJoinSeconds.toFixed(2)} s after the group join)`);
    const emptyConfig = { ...config, stateDir: mkdtempSync(join(tmpdir(), 'shredder-bench-')) };
    stateDirs.push(emptyConfig.stateDir);
    const restore = await profiled('restore', () => timeToReady(emptyConfig));
    const restored = restore.restores.reduce((n, r) => n + r.records, 0);
    if (restored !== SUBJECTS || !restore.restores.every((r) => r.fullRestore)) throw new Error(`restore: ${JSON.stringify(restore.restores)}`);
    const perPartition = restore.restores.map((r) => `p${r.partition} ${r.records} in ${(r.ms / 1000).toFixed(1)} s`).join(', ');
    console.log(`   new instance, empty state dir: ready in ${restore.seconds.toFixed(2)} s (${restore.afterJoinSeconds.toFixed(2)} s after the group join), ${rate(SUBJECTS / restore.seconds)} keys/s; ${perPartition}`);
    const plain2 = await plainRead(kafka, keysTopic, SUBJECTS);
    console.log(`   plain kafkajs read of the keys topic: ${rate(plain2.records / plain2.seconds)} keys/s, ${plain2.seconds.toFixed(2)} s (${plain2.afterJoinSeconds.toFixed(2)} s after the group join)`);
    const plainSeconds = (plain1.seconds + plain2.seconds) / 2;
    const restoreOverPlain = plainSeconds / restore.seconds;
    console.log(`   restore / plain read: ${restoreOverPlain.toFixed(2)} (target >= 0.5)`);
    const restoredDisk = diskBytes(emptyConfig.stateDir);

    // 5. memory (the process's: the broker is another process)
    const perKey = (m: Memory) => `rss ${mb(m.rss)} MB (+${mb(m.rss - start.rss)} MB since start, ${((m.rss - start.rss) / SUBJECTS).toFixed(0)} B/key), heap ${mb(m.heapUsed)} MB (+${((m.heapUsed - start.heapUsed) / SUBJECTS).toFixed(0)} B/key), external ${mb(m.external)} MB`;
    console.log(`5. holding ${SUBJECTS.toLocaleString('en-US')} keys (end of phase 3): ${perKey(held)}`);
    console.log(`   after the restore: ${perKey(restore.held)}`);
    console.log(`   state dir: ${mb(keptDisk)} MB (${(keptDisk / SUBJECTS).toFixed(0)} B/key) kept; ${mb(restoredDisk)} MB restored`);

    // 6. what one cached key costs: a partition's cache filled with its bound of new keys, committed
    const cache = cachedKeyCost();
    console.log(`6. a partition's key cache full (${cache.keys.toLocaleString('en-US')} subjects): heap +${cache.heapPerKey.toFixed(0)} B/key, external +${cache.externalPerKey.toFixed(0)} B/key, rss +${cache.rssPerKey.toFixed(0)} B/key`);
    console.log(`   its table of subjects ready for the sealing thread full (as many): heap +${cache.readyHeapPerKey.toFixed(0)} B/key, rss +${cache.readyRssPerKey.toFixed(0)} B/key`);

    const row = (figure: string, value: string, baseline: string, ratio: string, target: string) =>
      console.log(`${figure.padEnd(30)} ${value.padEnd(26)} ${baseline.padEnd(34)} ${ratio.padStart(6)}  ${target}`);
    console.log('');
    row('figure', 'value', 'baseline', 'ratio', 'target');
    row('produce (set-up)', `${rate(produced)} records/s`, '', '', '');
    row('new subjects (new keys)', `${rate(newRate)} records/s`, `known, in memory ${rate(knownRate)} records/s`, newOverKnown.toFixed(2), '>= 0.5');
    row('', '', `known, in the store ${rate(cold.perSecond)} records/s`, (newRate / cold.perSecond).toFixed(2), '');
    row('full restore, time to ready', `${restore.seconds.toFixed(1)} s, ${rate(SUBJECTS / restore.seconds)} keys/s`, `plain read ${plainSeconds.toFixed(1)} s, ${rate(SUBJECTS / plainSeconds)} keys/s`, restoreOverPlain.toFixed(2), '>= 0.5; 1M keys in ~10 s');
    row('restart, kept state dir', `${restart.seconds.toFixed(2)} s`, '', '', '');
    row('rss holding N keys', `${mb(held.rss)} MB`, `at start ${mb(start.rss)} MB`, '', `${((held.rss - start.rss) / SUBJECTS).toFixed(0)} B/key`);
    row('rss after the restore', `${mb(restore.held.rss)} MB`, `at start ${mb(start.rss)} MB`, '', `${((restore.held.rss - start.rss) / SUBJECTS).toFixed(0)} B/key`);
    row('key cache, per cached key', `heap ${cache.heapPerKey.toFixed(0)} B, rss ${cache.rssPerKey.toFixed(0)} B`, `${cache.keys.toLocaleString('en-US')} keys a partition at most`, '', '');
    row('ready table, per subject', `heap ${cache.readyHeapPerKey.toFixed(0)} B, rss ${cache.readyRssPerKey.toFixed(0)} B`, `${cache.keys.toLocaleString('en-US')} subjects a partition at most`, '', '');
    row('state dir on disk', `${mb(keptDisk)} MB`, '', '', `${(keptDisk / SUBJECTS).toFixed(0)} B/key`);
  } finally {
    for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
    if (broker) {
      await broker.stop();
    } else {
      // an external broker keeps what it was given: remove this run's topics from it
      const admin = kafka.admin();
      await admin.connect();
      const topics = (await admin.listTopics()).filter((t) => t.includes(config.groupId.slice('bench-scale-'.length)) && t.startsWith('bench-scale-'));
      await admin.deleteTopics({ topics }).catch((err: Error) => console.error(`deleting this run's topics failed: ${err.message}`));
      await admin.disconnect();
    }
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
