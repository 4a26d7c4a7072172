// What the development launchers (the local Kafka broker, the local schema registry) share: a free
// loopback port to listen on, the tail of a process's log for an error, and Maven to fetch what they
// run from Maven Central.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';

/**
 * `count` distinct ports free on 127.0.0.1 now. All are held open until the last is chosen, so the OS
 * cannot hand the same port out twice (it does, when ports are asked for one at a time); another process
 * may still take one before we listen.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      server.unref();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((server) => (server.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** A port free on 127.0.0.1 now (see `freePorts`). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port;
}

/** The last `lines` lines of a log file, for an error message. */
export function tailOf(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
}

// (built from a string: the linter forbids control characters in regular expression literals)
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(0x1b)}\\[[0-9;]*m`, 'g');

/**
 * Runs `mvn` with `args` in `cwd`, handing each line it prints to `onProgress`; a failure names `what`
 * Maven was doing, with the last 40 lines it printed.
 */
export function runMaven(args: string[], cwd: string, what: string, onProgress?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const mvn = spawn('mvn', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        // (-q still prints colour resets, alone on their lines: keep lines that say something)
        const text = line.replace(ANSI_COLOUR, '');
        if (!/[A-Za-z0-9]/.test(text)) continue;
        tail.push(text);
        if (tail.length > 40) tail.shift();
        onProgress?.(text);
      }
    };
    mvn.stdout.on('data', collect);
    mvn.stderr.on('data', collect);
    mvn.on('error', (err) => reject(new Error(`cannot run Maven ('mvn'): ${err.message}. Install Apache Maven and Java 17+.`, { cause: err })));
    mvn.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`Maven failed (exit ${code}) ${what}:\n${tail.join('\n')}`));
    });
  });
}
