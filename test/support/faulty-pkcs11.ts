// An HSM that fails on demand, for the fault tests: faulty-pkcs11/faulty-pkcs11.c, a PKCS#11 module in
// front of SoftHSM whose C_EncryptInit, C_Encrypt, C_DecryptInit and C_Decrypt return
// CKR_DEVICE_ERROR while a flag file exists. The flag is a file so that a test can switch the fault
// in a child process (the CLI) as well as in its own.
//
// The module is compiled with gcc once per source version, into a cache folder under os.tmpdir() named
// by the hash of the source and the header folder, against the standard PKCS#11 headers that pkcs11js
// ships (pkcs11js is needed by every PKCS#11 test anyway: no other package to install).
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot } from './repo-root.js';
import { SOFTHSM_MODULE, softHsmMissing } from './softhsm.js';

export const FAULTY_PKCS11_SOURCE = join(repoRoot(), 'test/support/faulty-pkcs11/faulty-pkcs11.c');

export interface FaultyPkcs11 {
  /** The shim's .so: give it as SHREDDER_PKCS11_MODULE (or modulePath). */
  readonly modulePath: string;
  /** The file whose existence is the fault. */
  readonly flagPath: string;
  /** What a process loading the shim needs in its environment (the real module, the flag). */
  readonly env: Record<string, string>;
  /** From now on the four cipher calls fail with CKR_DEVICE_ERROR, in every process using this flag. */
  fail(): void;
  /** The HSM is back. */
  recover(): void;
  /** Recovers and deletes the flag's folder. */
  remove(): void;
}

/** The folder of pkcs11js's copy of the OASIS headers (`pkcs11/pkcs11.h`), or undefined. */
function pkcs11Headers(): string | undefined {
  try {
    const dir = join(dirname(createRequire(import.meta.url).resolve('pkcs11js/package.json')), 'includes');
    return existsSync(join(dir, 'pkcs11', 'pkcs11.h')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

function gccMissing(): string | undefined {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'gcc is not installed (it builds the fault-injecting PKCS#11 module; apt-get install gcc)';
  }
}

/** Why the fault-injecting module cannot be used here, or undefined when SoftHSM, pkcs11js and gcc are all present. */
export function faultyPkcs11Missing(): string | undefined {
  const missing = softHsmMissing() ?? gccMissing();
  if (missing) return missing;
  if (!pkcs11Headers()) return 'pkcs11js does not ship includes/pkcs11/pkcs11.h (the PKCS#11 headers the fault-injecting module is built with)';
  return undefined;
}

/** Skips the running test or hook (visibly, with the reason) when the fault-injecting module cannot be built or used. */
export function skipWithoutFaultyPkcs11(context: Mocha.Context): void {
  const missing = faultyPkcs11Missing();
  if (missing === undefined) return;
  console.log(`      (skipped: ${missing})`);
  context.skip();
}

let built: string | undefined;

/** The shim's .so, compiled on first use (and reused across runs while the source is unchanged). */
export function buildFaultyPkcs11(): string {
  if (built) return built;
  const headers = pkcs11Headers();
  if (!headers) throw new Error(faultyPkcs11Missing());
  const source = readFileSync(FAULTY_PKCS11_SOURCE);
  const hash = createHash('sha256').update(source).update(headers).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'kafka-shredder-faulty-pkcs11', hash);
  const library = join(dir, 'libfaulty-pkcs11.so');
  if (!existsSync(library)) {
    mkdirSync(dir, { recursive: true });
    // built under a name of its own and renamed: test processes running at once never load half a file
    const partial = join(dir, `.build-${process.pid}-${randomBytes(4).toString('hex')}.so`);
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-I', headers, '-o', partial, FAULTY_PKCS11_SOURCE, '-ldl'], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(partial, library);
  }
  return (built = library);
}

/** A fault-injecting HSM in front of `realModule` (SoftHSM), with a flag of its own, not failing yet. */
export function faultyPkcs11(realModule = SOFTHSM_MODULE): FaultyPkcs11 {
  const modulePath = buildFaultyPkcs11();
  const flagDir = mkdtempSync(join(tmpdir(), 'shredder-hsm-fault-'));
  const flagPath = join(flagDir, 'device-error');
  const recover = () => rmSync(flagPath, { force: true });
  return {
    modulePath,
    flagPath,
    env: { FAULTY_PKCS11_MODULE: realModule, FAULTY_PKCS11_FLAG: flagPath },
    fail: () => writeFileSync(flagPath, ''),
    recover,
    remove() {
      recover();
      rmSync(flagDir, { recursive: true, force: true });
    },
  };
}
