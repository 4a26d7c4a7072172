// A single-node Apache Kafka (KRaft, broker+controller) on loopback, started from Maven jars:
// what the demo, the integration tests and the benchmarks run against.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { resolveKafkaJars, type KafkaJarsOptions } from './kafka-jars.js';
import { brokerProperties, LOG4J2_PROPERTIES, type BrokerPorts, type SslListenerFiles } from './broker-config.js';
import { SupervisedProcess } from './supervisor.js';
import { closeAll } from '../../errors/close-all.js';
import { freePorts, tailOf } from '../local-process.js';

export interface LocalKafkaBrokerOptions extends KafkaJarsOptions {
  /** JVM heap cap; the JVM would otherwise take a quarter of the machine's memory. */
  heap?: string;
  startTimeoutMs?: number;
  onProgress?: (line: string) => void;
  /** An extra SSL listener on its own port (see `tlsBrokers`), beside the PLAINTEXT one. */
  tls?: LocalTlsListenerOptions;
}

/** PEM files of the SSL listener. */
export interface LocalTlsListenerOptions {
  /** The broker's certificate (then any intermediates), PEM. */
  certificateFile: string;
  /** Its private key, PEM (PKCS#8, unencrypted: what `openssl req -nodes` writes). */
  keyFile: string;
  /** CAs client certificates are checked against, PEM: needed with `clientAuth`. */
  caFile?: string;
  /** `required`: mutual TLS, a client without a certificate signed by `caFile` is refused. Default `none`. */
  clientAuth?: 'required' | 'requested' | 'none';
}

/** A Kafka cluster id: 16 random bytes in unpadded base64url, as `kafka-storage random-uuid` prints. */
function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id; // Kafka refuses ids that look like a command-line flag
  }
}

function javaExecutable(): string {
  return process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

function runToCompletion(command: string, args: string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = openSync(logFile, 'a');
    const child = spawn(command, args, { stdio: ['ignore', out, out] });
    child.on('error', (err) => { closeSync(out); reject(err); });
    child.on('close', (code) => {
      closeSync(out);
      if (code === 0) resolve();
      else reject(new Error(`${command} exited with ${code}: ${tailOf(logFile)}`));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalKafkaBroker {
  private process?: SupervisedProcess;
  private dataDir?: string;
  private ports?: BrokerPorts;

  constructor(private readonly options: LocalKafkaBrokerOptions = {}) {}

  /** `host:port` of the broker's PLAINTEXT listener. */
  get brokers(): string[] {
    if (!this.ports) throw new Error('the local Kafka broker is not started');
    return [`127.0.0.1:${this.ports.broker}`];
  }

  /** `host:port` of the SSL listener (with the `tls` option). */
  get tlsBrokers(): string[] {
    if (this.ports?.ssl === undefined) throw new Error('the local Kafka broker is not started, or has no SSL listener (option tls)');
    return [`127.0.0.1:${this.ports.ssl}`];
  }

  /** `host:port` of the KRaft controller listener (not a broker listener: clients cannot use it). */
  get controllerAddress(): string {
    if (!this.ports) throw new Error('the local Kafka broker is not started');
    return `127.0.0.1:${this.ports.controller}`;
  }

  /** The broker's data folder (removed on stop). */
  get dataDirectory(): string | undefined {
    return this.dataDir;
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  async start(): Promise<string[]> {
    const progress = this.options.onProgress ?? (() => undefined); // (no one to tell)
    const jars = await resolveKafkaJars(this.options);
    const classpath = jars.join(':');
    const dataDir = await mkdtemp(join(tmpdir(), 'kafka-shredder-broker-'));
    this.dataDir = dataDir;
    const tls = this.options.tls;
    const [broker, controller, ssl] = await freePorts(tls ? 3 : 2);
    const ports: BrokerPorts = { broker, controller, ...(tls ? { ssl } : {}) };
    this.ports = ports;
    const propsFile = join(dataDir, 'server.properties');
    const logFile = join(dataDir, 'broker.out');
    await writeFile(propsFile, brokerProperties(ports, join(dataDir, 'log'), tls && (await this.sslListenerFiles(tls, dataDir))));
    await writeFile(join(dataDir, 'log4j2.properties'), LOG4J2_PROPERTIES);
    const jvmArgs = [
      `-Xmx${this.options.heap ?? '512m'}`,
      '-Xss1m',
      '-XX:+UseSerialGC', // one small broker: the parallel collectors only add threads on 2 cores
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${join(dataDir, 'log4j2.properties')}`,
      `-Dkafka.logs.dir=${dataDir}`,
      '-cp',
      classpath,
    ];
    try {
      progress(`formatting KRaft storage in ${dataDir}`);
      await runToCompletion(
        javaExecutable(),
        [...jvmArgs, 'kafka.tools.StorageTool', 'format', '-t', randomClusterId(), '-c', propsFile],
        logFile,
      );
      progress(`starting Apache Kafka on 127.0.0.1:${ports.broker}`);
      this.process = SupervisedProcess.start('kafka-shredder-broker', dataDir, [javaExecutable(), ...jvmArgs, 'kafka.Kafka', propsFile], logFile);
      await this.waitUntilReady(this.options.startTimeoutMs ?? 90_000);
      progress(`Apache Kafka is ready on ${this.brokers.join(',')}`);
      return this.brokers;
    } catch (err) {
      const log = tailOf(join(dataDir, 'broker.log'), 20);
      await this.stop();
      throw new Error(`the local Kafka broker did not start: ${(err as Error).message}\n--- broker log ---\n${log}`, { cause: err });
    }
  }

  /** Kafka's PEM key store is one file holding the key and the certificate chain. */
  private async sslListenerFiles(tls: LocalTlsListenerOptions, dataDir: string): Promise<SslListenerFiles> {
    const keystore = join(dataDir, 'ssl-keystore.pem');
    await writeFile(keystore, `${readFileSync(tls.keyFile, 'utf8').trim()}\n${readFileSync(tls.certificateFile, 'utf8').trim()}\n`, { mode: 0o600 });
    return { keystore, truststore: tls.caFile, clientAuth: tls.clientAuth };
  }

  /** The broker's supervisor process (the JVM is its child), while it runs: for tools that place it on CPUs. */
  get processId(): number | undefined {
    return this.process?.pid;
  }

  /**
   * Ready means usable for everything the product does: metadata answers, and the group and
   * transaction coordinators are loaded (a first transactional offset commit on a fresh broker
   * otherwise fails with NOT_COORDINATOR, which kafkajs does not retry).
   */
  private async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const kafka = new Kafka({
      clientId: 'kafka-shredder-local-broker',
      brokers: this.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      connectionTimeout: 1000,
    });
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error('the broker process exited during start-up');
      try {
        await this.warmUp(kafka);
        return;
      } catch (err) {
        lastError = err;
        await sleep(300);
      }
    }
    throw new Error(`not ready after ${timeoutMs} ms: ${(lastError as Error)?.message ?? 'timeout'}`);
  }

  private async warmUp(kafka: Kafka): Promise<void> {
    const admin = kafka.admin();
    const producer = kafka.producer({ transactionalId: 'kafka-shredder-warm-up', idempotent: true, maxInFlightRequests: 1 });
    try {
      await admin.connect();
      await admin.describeCluster();
      const topics = await admin.listTopics();
      if (!topics.includes('__kafka_shredder_warm_up')) {
        await admin.createTopics({ topics: [{ topic: '__kafka_shredder_warm_up', numPartitions: 1 }], waitForLeaders: true });
      }
      await producer.connect();
      const txn = await producer.transaction();
      try {
        await txn.send({ topic: '__kafka_shredder_warm_up', messages: [{ value: 'ready' }] });
        await txn.sendOffsets({
          consumerGroupId: 'kafka-shredder-warm-up',
          topics: [{ topic: '__kafka_shredder_warm_up', partitions: [{ partition: 0, offset: '0' }] }],
        });
        await txn.commit();
      } catch (err) {
        await txn.abort().catch(() => undefined); // (the commit's error is the one to report)
        throw err;
      }
    } finally {
      // (a warm-up that worked needs nothing more from these clients; one that failed reports its own error)
      await closeAll([() => producer.disconnect(), () => admin.disconnect()]).catch(() => undefined);
    }
  }

  /**
   * Kills the broker's JVM (SIGKILL: a crash, not a clean shutdown) and starts it again on the same
   * data folder and ports; resolves once it answers again. A fault for tests: clients lose every
   * connection, transactions in flight are aborted, the group coordinator is reloaded.
   */
  async crashAndRestart(timeoutMs = 90_000): Promise<void> {
    if (!this.process?.running) throw new Error('the local Kafka broker is not running');
    this.process.crashAndRestart();
    await sleep(500); // (the old JVM is gone by then: waitUntilReady must not find it)
    await this.waitUntilReady(timeoutMs);
  }

  /** Stops the broker and deletes its data folder; safe to call twice. */
  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
    if (this.dataDir) {
      await rm(this.dataDir, { recursive: true, force: true });
      this.dataDir = undefined;
    }
  }
}
