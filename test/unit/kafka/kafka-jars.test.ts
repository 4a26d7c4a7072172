// The local broker's classpath cache: reused only for the POM it was resolved from.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_KAFKA_VERSION, resolveKafkaJars, runtimePom } from '../../../src/dev/local-broker/kafka-jars.js';

describe('Kafka broker jars cache', () => {
  /** A cache folder holding `pom` and a classpath of files that exist; PATH without Maven while `work` runs. */
  async function withCache<T>(pom: string, work: (cacheDir: string, classpath: string[]) => Promise<T>): Promise<T> {
    const cacheDir = mkdtempSync(join(tmpdir(), 'kafka-jars-cache-'));
    const dir = join(cacheDir, `kafka-${DEFAULT_KAFKA_VERSION}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'pom.xml'), pom);
    const classpath = [process.execPath, join(dir, 'pom.xml')];
    writeFileSync(join(dir, 'classpath.txt'), classpath.join(':'));
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent'; // no mvn can be found
    try {
      return await work(cacheDir, classpath);
    } finally {
      process.env.PATH = path;
    }
  }

  it('reuses the classpath resolved from the current POM, without Maven', async () => {
    await withCache(runtimePom(DEFAULT_KAFKA_VERSION), async (cacheDir, classpath) => {
      expect(await resolveKafkaJars({ cacheDir })).to.deep.equal(classpath);
    });
  });

  it('resolves again when the POM in the cache differs (an older one, without kafka-tools), leaving no partial files', async () => {
    const tools = '<artifactId>kafka-tools</artifactId>';
    const older = runtimePom(DEFAULT_KAFKA_VERSION).split('\n').filter((line) => !line.includes(tools)).join('\n');
    expect(runtimePom(DEFAULT_KAFKA_VERSION)).to.include(tools);
    expect(older).to.not.include(tools);
    await withCache(older, async (cacheDir) => {
      let error: Error | undefined;
      await resolveKafkaJars({ cacheDir }).catch((e: Error) => (error = e));
      expect(error?.message).to.match(/cannot run Maven/);
      const dir = join(cacheDir, `kafka-${DEFAULT_KAFKA_VERSION}`);
      expect(readdirSync(dir).sort()).to.deep.equal(['classpath.txt', 'pom.xml']);
      expect(existsSync(join(dir, 'classpath.txt'))).to.equal(true);
    });
  });
});
