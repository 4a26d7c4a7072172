// A Confluent-compatible schema registry on loopback (Apicurio Registry, in-memory storage), started
// from Maven Central like the local Kafka broker: what the tests of the registry formats run against.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SupervisedProcess } from '../local-broker/supervisor.js';
import { resolveApicurioRegistry, type ApicurioOptions } from './apicurio-artifact.js';
import { findJava } from './java.js';
import { freePorts, tailOf } from '../local-process.js';

/** Apicurio Registry 3's classes are class-file version 65. */
export const REGISTRY_JAVA_VERSION = 21;

export interface LocalSchemaRegistryOptions extends ApicurioOptions {
  /** JVM heap cap; RSS stays near 250-300 MB with the default. */
  heap?: string;
  startTimeoutMs?: number;
  /** The java to run it with; default: the first of Java 21+ that `findJava` finds. */
  javaExecutable?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalSchemaRegistry {
  private process?: SupervisedProcess;
  private dataDir?: string;
  private httpPort?: number;

  constructor(private readonly options: LocalSchemaRegistryOptions = {}) {}

  /** The Confluent-compatible API's base URL (what SHREDDER_SCHEMA_REGISTRY_URL takes). */
  get url(): string {
    if (this.httpPort === undefined) throw new Error('the local schema registry is not started');
    return `http://127.0.0.1:${this.httpPort}/apis/ccompat/v7`;
  }

  /** The registry's supervisor process (the JVM is its child), while it runs. */
  get processId(): number | undefined {
    return this.process?.pid;
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  /** Starts the registry and resolves with its `url` once the ccompat API answers. */
  async start(): Promise<string> {
    const progress = this.options.onProgress ?? (() => undefined); // (no one to tell)
    // Java first: without it there is no point downloading 160 MB.
    const java = this.options.javaExecutable ?? (await findJava(REGISTRY_JAVA_VERSION)).executable;
    const dist = await resolveApicurioRegistry(this.options);
    const dataDir = await mkdtemp(join(tmpdir(), 'kafka-shredder-registry-'));
    this.dataDir = dataDir;
    const [httpPort, managementPort] = await freePorts(2);
    this.httpPort = httpPort;
    const logFile = join(dataDir, 'registry.out');
    const args = [
      `-Xmx${this.options.heap ?? '384m'}`,
      '-XX:+UseSerialGC', // one small JVM: the parallel collectors only add threads on 2 cores
      '-Djava.awt.headless=true',
      // Both of Quarkus' listeners on loopback: their defaults are 0.0.0.0, port 8080 and 9000 (the
      // management interface, on at build time, cannot be turned off at run time, only moved).
      '-Dquarkus.http.host=127.0.0.1',
      `-Dquarkus.http.port=${httpPort}`,
      '-Dquarkus.management.host=127.0.0.1',
      `-Dquarkus.management.port=${managementPort}`,
      // In-memory H2 (the default, stated): every start is an empty registry, and nothing is left on disk.
      '-Dapicurio.storage.kind=sql',
      '-Dapicurio.storage.sql.kind=h2',
      '-jar',
      join(dist, 'quarkus-run.jar'),
    ];
    try {
      progress(`starting Apicurio Registry on 127.0.0.1:${httpPort}`);
      // (in its temporary folder: nothing the JVM writes lands in the caller's)
      this.process = SupervisedProcess.start('kafka-shredder-registry', dataDir, [java, ...args], logFile, dataDir);
      await this.waitUntilReady(this.options.startTimeoutMs ?? 60_000);
      progress(`Apicurio Registry is ready at ${this.url}`);
      return this.url;
    } catch (err) {
      const log = tailOf(logFile, 20);
      await this.stop();
      throw new Error(`the local schema registry did not start: ${(err as Error).message}\n--- registry log ---\n${log}`, { cause: err });
    }
  }

  /** Ready: the Confluent-compatible API lists subjects (Quarkus' own readiness comes slightly earlier). */
  private async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error('the registry process exited during start-up');
      try {
        const response = await fetch(`${this.url}/subjects`, { signal: AbortSignal.timeout(2000) });
        await response.arrayBuffer();
        if (response.ok) return;
        lastError = new Error(`GET /subjects answered ${response.status}`);
      } catch (err) {
        lastError = err;
      }
      await sleep(200);
    }
    throw new Error(`not ready after ${timeoutMs} ms: ${(lastError as Error)?.message ?? 'timeout'}`);
  }

  /** Stops the registry (its schemas are gone with it) and deletes its folder; safe to call twice. */
  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
    if (this.dataDir) {
      await rm(this.dataDir, { recursive: true, force: true });
      this.dataDir = undefined;
    }
  }
}
