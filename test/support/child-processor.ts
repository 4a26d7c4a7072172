// Runs `kafka-shredder <command>` as a child process, as an operator would, so that tests can kill it.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './repo-root.js';

export interface ChildProcessor {
  child: ChildProcess;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  /** Raw stdout and stderr. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** `bin`: the launcher to run, this checkout's unless a test runs an installed copy. */
export function startChildProcessor(command: string, env: Record<string, string>, args: string[] = [], bin = join(repoRoot(), 'bin/kafka-shredder.js')): ChildProcessor {
  const child = spawn(process.execPath, [bin, command, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let raw = '';
  let partial = '';
  const waiters: { predicate: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    raw += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue;
      }
      logs.push(parsed);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(parsed)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(parsed);
        }
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (raw += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    logs,
    output: () => raw,
    exited,
    waitForLog(predicate, timeoutMs = 30_000) {
      const found = logs.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line in ${timeoutMs} ms; output:\n${raw.slice(-3000)}`)), timeoutMs);
        waiters.push({ predicate, resolve: (l) => { clearTimeout(timer); resolve(l); } });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`the processor exited before logging what was expected; output:\n${raw.slice(-3000)}`));
        });
      });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Kills the processor with SIGKILL `kills` times, each time somewhere inside its transactions (0.5 to
 * 1.5 s after a task was restored, which means it is processing), and starts it again. Returns the
 * last one, still running.
 */
export async function killRepeatedly(first: ChildProcessor, command: string, env: Record<string, string>, kills: number): Promise<ChildProcessor> {
  let child = first;
  for (let kill = 0; kill < kills; kill++) {
    await child.waitForLog((l) => l.msg === 'keys partition restored', 60_000);
    await sleep(500 + Math.floor(Math.random() * 1000));
    child.child.kill('SIGKILL');
    await child.exited;
    child = startChildProcessor(command, env);
  }
  return child;
}
