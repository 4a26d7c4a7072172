// Which java runs the local schema registry: the version parse, and the error naming what was found.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findJava, JavaNotFoundError, parseJavaVersion } from '../../../src/dev/schema-registry/java.js';

/** Runs `work` with no java on PATH (execFile looks java up on the parent's PATH, not the env given). */
async function withoutPathJava<T>(work: () => Promise<T>): Promise<T> {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    return await work();
  } finally {
    process.env.PATH = path;
  }
}

/** A fake JDK folder whose bin/java prints `version` as `java -version` does (to stderr). */
function fakeJdk(jvmDir: string, name: string, version: string): string {
  const bin = join(jvmDir, name, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'java'), `#!/bin/sh\necho 'openjdk version "${version}" 2025-01-01' >&2\n`, { mode: 0o755 });
  return join(jvmDir, name);
}

describe('java for the local schema registry', () => {
  it('reads the feature version of every java -version style', () => {
    expect(parseJavaVersion('openjdk version "17.0.15" 2025-04-15')).to.equal(17);
    expect(parseJavaVersion('openjdk version "25" 2025-09-16')).to.equal(25);
    expect(parseJavaVersion('openjdk version "21.0.2" 2024-01-16 LTS')).to.equal(21);
    expect(parseJavaVersion('java version "1.8.0_402"')).to.equal(8);
    expect(parseJavaVersion('openjdk version "22-ea" 2024-03-19')).to.equal(22);
    expect(parseJavaVersion('no java here')).to.equal(undefined);
  });

  it('takes JAVA_HOME when new enough, else the first new enough JDK under the JVM folder', async () => {
    const jvmDir = mkdtempSync(join(tmpdir(), 'jvm-'));
    const old = fakeJdk(jvmDir, 'a-openjdk-17', '17.0.15');
    const newer = fakeJdk(jvmDir, 'b-temurin-25', '25');
    await withoutPathJava(async () => {
      expect(await findJava(21, { JAVA_HOME: newer }, jvmDir)).to.deep.equal({ executable: join(newer, 'bin', 'java'), version: 25 });
      expect(await findJava(21, { JAVA_HOME: old }, jvmDir)).to.deep.equal({ executable: join(newer, 'bin', 'java'), version: 25 });
      expect(await findJava(17, { JAVA_HOME: old }, jvmDir)).to.deep.equal({ executable: join(old, 'bin', 'java'), version: 17 });
      expect(await findJava(17, {}, jvmDir)).to.deep.equal({ executable: join(old, 'bin', 'java'), version: 17 });
    });
  });

  it('names every java it found, with its version, when none is new enough', async () => {
    const jvmDir = mkdtempSync(join(tmpdir(), 'jvm-'));
    const old = fakeJdk(jvmDir, 'openjdk-17', '17.0.15');
    await withoutPathJava(async () => {
      const error = await findJava(21, { JAVA_HOME: '/no/such/jdk' }, jvmDir).then(() => undefined, (err: unknown) => err);
      expect(error).to.be.instanceOf(JavaNotFoundError);
      expect((error as Error).message).to.include('no Java 21 or newer found')
        .and.include('JAVA_HOME=/no/such/jdk (not runnable)')
        .and.include('java on PATH (not runnable)')
        .and.include(`${old} (Java 17)`)
        .and.include('JAVA_HOME');
    });
  });
});
