// Finds a java of a given major version or newer. Apicurio Registry 3 is built for Java 21 (class-file
// version 65), while the Kafka broker and Maven run on the machine's default java, often 17: so the
// registry cannot simply run `java` from PATH.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface JavaInstallation {
  /** The java executable. */
  executable: string;
  /** Its feature (major) version: 17, 21, 25, ... */
  version: number;
}

/** No java of the version needed was found; the message says where we looked and what was there. */
export class JavaNotFoundError extends Error {
  override readonly name = 'JavaNotFoundError';
}

/** The feature version `java -version` reports ("1.8.0_x" is 8, "21.0.2" is 21, "25" is 25). */
export function parseJavaVersion(versionOutput: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?[^"]*"/.exec(versionOutput);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first === 1 && match[2] !== undefined ? Number(match[2]) : first;
}

function javaVersionOf(executable: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    // (java -version writes to stderr)
    execFile(executable, ['-version'], { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve(err ? undefined : parseJavaVersion(`${stderr}\n${stdout}`));
    });
  });
}

/** Where to look, in order: JAVA_HOME, the java on PATH, then every JDK under /usr/lib/jvm (Debian's and Temurin's home). */
function candidates(env: NodeJS.ProcessEnv, jvmDir: string): { executable: string; origin: string }[] {
  const found: { executable: string; origin: string }[] = [];
  if (env.JAVA_HOME) found.push({ executable: join(env.JAVA_HOME, 'bin', 'java'), origin: `JAVA_HOME=${env.JAVA_HOME}` });
  found.push({ executable: 'java', origin: 'java on PATH' });
  if (existsSync(jvmDir)) {
    for (const name of readdirSync(jvmDir).sort()) {
      const executable = join(jvmDir, name, 'bin', 'java');
      if (existsSync(executable)) found.push({ executable, origin: join(jvmDir, name) });
    }
  }
  return found;
}

/**
 * The first java of `minimum` or newer among JAVA_HOME, PATH and /usr/lib/jvm/*; a JavaNotFoundError
 * listing every java seen, with its version, otherwise.
 */
export async function findJava(minimum: number, env: NodeJS.ProcessEnv = process.env, jvmDir = '/usr/lib/jvm'): Promise<JavaInstallation> {
  const seen: string[] = [];
  for (const { executable, origin } of candidates(env, jvmDir)) {
    const version = await javaVersionOf(executable);
    if (version !== undefined && version >= minimum) return { executable, version };
    seen.push(`${origin} (${version === undefined ? 'not runnable' : `Java ${version}`})`);
  }
  throw new JavaNotFoundError(
    `no Java ${minimum} or newer found: looked at ${seen.join(', ')}. Install a JDK ${minimum}+ (Temurin or OpenJDK) ` +
      'under /usr/lib/jvm, or point JAVA_HOME at one',
  );
}
