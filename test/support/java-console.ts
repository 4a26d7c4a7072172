// Kafka's own Java tools, from the jars the local broker runs on (kafka-tools is in its POM): the
// console producer and consumer, for records written or read exactly as a Java client does (its
// compression codecs and their framing), and DumpLogSegments, for what a partition's log holds.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveKafkaJars } from '../../src/dev/local-broker/kafka-jars.js';

/** A small, quick-starting JVM: these tools run for seconds. */
const JVM_FLAGS = ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];
const SEPARATOR = '\t';

export type JavaCodec = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

export interface ConsoleRecord {
  key: string;
  value: string;
}

export interface ConsumedRecord extends ConsoleRecord {
  partition: number;
}

/** Runs a Java tool's main class with `stdin` as its input; resolves to its standard output. */
async function runJava(mainClass: string, args: string[], stdin = '', timeoutMs = 60_000): Promise<string> {
  const classpath = (await resolveKafkaJars()).join(':');
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  return new Promise((resolve, reject) => {
    const child = spawn(java, [...JVM_FLAGS, '-cp', classpath, mainClass, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${java}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${mainClass} ${signal ? `killed (${signal}) after ${timeoutMs} ms` : `exited with ${code}`}:\n${err}`));
    });
    child.stdin.on('error', () => {}); // (a tool that exits early: its error is the exit code's)
    child.stdin.end(stdin);
  });
}

function line(record: ConsoleRecord): string {
  const fields = [record.key, record.value];
  if (fields.some((f) => /[\t\r\n]/.test(f))) throw new Error('console records hold no tabs or line breaks');
  return fields.join(SEPARATOR);
}

/**
 * Produces `records` (a line each, key and value) with Kafka's ConsoleProducer and `codec`: the
 * Java client's default partitioner (murmur2 of the key, as kafkajs' default), idempotent, acks=all.
 * Batches of up to `batchBytes` (1 MiB), lingering 100 ms; the tool flushes as its input ends.
 */
export async function javaProduce(brokers: string[], topic: string, codec: JavaCodec, records: ConsoleRecord[], batchBytes = 1024 * 1024): Promise<void> {
  await runJava('org.apache.kafka.tools.ConsoleProducer', [
    '--bootstrap-server', brokers.join(','),
    '--topic', topic,
    '--compression-codec', codec,
    '--batch-size', String(batchBytes),
    '--timeout', '100', // linger.ms
    '--reader-property', 'parse.key=true',
    '--reader-property', `key.separator=${SEPARATOR}`,
  ], records.map((r) => `${line(r)}\n`).join(''));
}

/**
 * The first `count` records of a topic (from the beginning, read_committed, in a fresh group) as
 * Kafka's ConsoleConsumer prints them: partition, key and value; in order within each partition.
 * Fails when fewer arrive within `timeoutMs`.
 */
export async function javaConsume(brokers: string[], topic: string, count: number, timeoutMs = 30_000): Promise<ConsumedRecord[]> {
  const out = await runJava('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server', brokers.join(','),
    '--topic', topic,
    '--from-beginning',
    '--isolation-level', 'read_committed',
    '--max-messages', String(count),
    '--timeout-ms', String(timeoutMs),
    '--formatter-property', 'print.partition=true',
    '--formatter-property', 'print.key=true',
    '--formatter-property', `key.separator=${SEPARATOR}`,
  ], '', timeoutMs + 30_000);
  const records = out.split('\n').filter(Boolean).map((text): ConsumedRecord => {
    // "Partition:<n>\t<key>\t<value>"
    const [partition, key, ...value] = text.split(SEPARATOR);
    return { partition: Number(partition.replace('Partition:', '')), key, value: value.join(SEPARATOR) };
  });
  if (records.length !== count) throw new Error(`ConsoleConsumer read ${records.length} records of ${topic}, expected ${count}`);
  return records;
}

export interface LogBatch {
  partition: number;
  baseOffset: number;
  count: number;
  isControl: boolean;
  /** The batch's compression codec, as Kafka names it: none, gzip, snappy, lz4, zstd. */
  compression: string;
}

/**
 * The record batches of each topic's partitions, read by Kafka's DumpLogSegments from the segment
 * files under the broker's log folder `logDir` (one JVM for all of them): with each batch's codec.
 */
export async function dumpLogBatches(logDir: string, topics: string[]): Promise<Map<string, LogBatch[]>> {
  const segmentOf = new Map<string, { topic: string; partition: number }>();
  for (const folder of readdirSync(logDir)) {
    const topic = topics.find((t) => folder.startsWith(`${t}-`) && /^\d+$/.test(folder.slice(t.length + 1))); // "<topic>-<partition>"
    if (topic === undefined) continue;
    const partition = Number(folder.slice(topic.length + 1));
    for (const file of readdirSync(join(logDir, folder))) if (file.endsWith('.log')) segmentOf.set(join(logDir, folder, file), { topic, partition });
  }
  const batches = new Map<string, LogBatch[]>(topics.map((t) => [t, []]));
  if (segmentOf.size === 0) return batches;
  const out = await runJava('org.apache.kafka.tools.DumpLogSegments', ['--files', [...segmentOf.keys()].join(',')]);
  let current: { topic: string; partition: number } | undefined;
  for (const text of out.split('\n')) {
    // "Dumping <segment file>", then "baseOffset: 0 lastOffset: 9 count: 10 ... isControl: false ... compresscodec: zstd crc: ..."
    if (text.startsWith('Dumping ')) current = segmentOf.get(text.slice('Dumping '.length).trim());
    if (!text.startsWith('baseOffset:') || !current) continue;
    const field = (name: string) => new RegExp(`(?:^| )${name}: (\\S+)`).exec(text)?.[1] ?? '';
    batches.get(current.topic)!.push({
      partition: current.partition,
      baseOffset: Number(field('baseOffset')),
      count: Number(field('count')),
      isControl: field('isControl') === 'true',
      compression: field('compresscodec'),
    });
  }
  return batches;
}
