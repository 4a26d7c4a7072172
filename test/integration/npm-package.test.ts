// The npm package as a user gets it: `npm pack`, then `npm install` of the tarball into an empty
// folder with no build step (no compiler, no Java, no devDependencies), and the CLI and the library
// run from there.
import { expect } from 'chai';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { startChildProcessor, type ChildProcessor } from '../support/child-processor.js';
import { decryptRecord, readKeysTable } from '../support/decrypt.js';
import { encryptorSetup } from '../support/encryptor.js';
import { produce, readAtLeast, testKafka } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

/** Bytes of every file under `dir` (symlinks counted as links, not followed). */
function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : lstatSync(path).size;
  }
  return total;
}

/** package.json of every package installed in `modules` (top level and scoped; npm hoists). */
function installedPackages(modules: string): Map<string, { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }> {
  const found = new Map();
  for (const name of readdirSync(modules)) {
    const names = name.startsWith('@') ? readdirSync(join(modules, name)).map((n) => `${name}/${n}`) : [name];
    for (const pkg of names) {
      const manifest = join(modules, pkg, 'package.json');
      if (existsSync(manifest)) found.set(pkg, JSON.parse(readFileSync(manifest, 'utf8')));
    }
  }
  return found;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;

describe('npm package', function () {
  this.timeout(300_000);
  const root = repoRoot();
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
  let work: string;
  let app: string;
  let packed: PackResult;
  // the same node runs `#!/usr/bin/env node` in the installed bin
  const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };

  const run = (command: string, args: string[], cwd: string): SpawnSyncReturns<string> =>
    spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 240_000 });
  const installedBin = () => join(app, 'node_modules', '.bin', 'kafka-shredder');
  /** Runs an ES module script in the consuming folder, so `kafka-shredder` resolves as a user's import would. */
  const nodeScript = (script: string) => run(process.execPath, ['--input-type=module', '-e', script], app);

  before(function () {
    this.timeout(300_000);
    work = mkdtempSync(join(tmpdir(), 'shredder-npm-package-'));
    // --ignore-scripts: `prepare` would build again, and the test run has built dist/ already
    const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
    expect(pack.status, pack.stderr).to.equal(0);
    packed = (JSON.parse(pack.stdout) as PackResult[])[0];
    app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    // --ignore-scripts: npm 11 still runs dependencies' install scripts that allowScripts does not
    // cover (with a warning), which would build pkcs11js and hide a package that needs a compiler
    const install = run('npm', ['install', join(work, packed.filename), '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts'], app);
    expect(install.status, install.stdout + install.stderr).to.equal(0);
    console.log(
      `      tarball ${packed.filename}: ${mb(packed.size)} (${packed.files.length} files, ${mb(packed.unpackedSize)} unpacked); ` +
        `installed: ${mb(folderBytes(join(app, 'node_modules')))} in node_modules, of which kafka-shredder ${mb(folderBytes(join(app, 'node_modules', 'kafka-shredder')))} ` +
        `and rocksdb ${mb(folderBytes(join(app, 'node_modules', 'rocksdb')))}`,
    );
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs the runtime only: compiled src without the demo, the wasm core, the bin and the docs', () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).to.include.members([
      'package.json',
      'README.md',
      'bin/kafka-shredder.js',
      'build/shredder-core.wasm',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli/main.js',
      'dist/src/crypto/off-thread/sealing-thread-worker.js',
      'docs/library.md',
      'docs/operations.md',
    ]);
    const unwanted = paths.filter((p) =>
      /^(test|bench|assembly|src|node_modules)\//.test(p) ||
      /^dist\/(test|bench|src\/dev)\//.test(p) ||
      (p.endsWith('.ts') && !p.endsWith('.d.ts')) ||
      p.endsWith('.map') ||
      p.endsWith('.wat'));
    expect(unwanted).to.deep.equal([]);
  });

  it('installs no devDependency', () => {
    const installed = installedPackages(join(app, 'node_modules'));
    for (const tool of ['typescript', 'mocha', 'assemblyscript', 'eslint', 'chai']) expect(installed.has(tool), tool).to.equal(false);
    // a devDependency may still be there as a runtime package's own dependency (protobufjs needs long)
    const neededBy = (name: string) => [...installed].filter(([, pkg]) => pkg.dependencies?.[name] ?? pkg.optionalDependencies?.[name]).map(([n]) => n);
    const unexplained = Object.keys(manifest.devDependencies).filter((name) => installed.has(name) && neededBy(name).length === 0);
    expect(unexplained).to.deep.equal([]);
  });

  it('runs `kafka-shredder --help` and `--version` from node_modules/.bin', () => {
    const help = run(installedBin(), ['--help'], app);
    expect(help.status, help.stderr).to.equal(0);
    for (const command of ['encrypt', 'decrypt', 'reencrypt', 'forget', 'keys', 'verify-erasure', 'demo']) expect(help.stdout).to.match(new RegExp(`^ {2}${command}\\b`, 'm'));
    expect(help.stdout).to.contain('KAFKA_BROKERS');
    const version = run(installedBin(), ['--version'], app);
    expect(version.status, version.stderr).to.equal(0);
    expect(version.stdout.trim()).to.equal(manifest.version);
  });

  it('says in one line that `kafka-shredder demo` runs from a source checkout, with exit code 2', () => {
    const demo = run(installedBin(), ['demo'], app);
    expect(demo.status).to.equal(2);
    expect(demo.stdout).to.equal('');
    expect(demo.stderr.trimEnd().split('\n')).to.have.length(1);
    expect(demo.stderr).to.contain('source checkout').and.to.contain('npm start');
  });

  it('imports the library, which seals and opens with the wasm core; only the exported entry points resolve', () => {
    const library = nodeScript(`
      const m = await import('kafka-shredder');
      const core = await m.loadCryptoCore();
      const key = new Uint8Array(32).fill(7);
      const aad = new TextEncoder().encode('topic/0');
      const [sealed] = m.sealWithFreshNonces(core, [{ key, aad, plaintext: new TextEncoder().encode('hello') }]);
      const [opened] = core.openBatch([{ key, nonce: sealed.nonce, aad, sealed: sealed.sealed }]);
      const tampered = Uint8Array.from(sealed.sealed);
      tampered[0] ^= 1;
      const [forged] = core.openBatch([{ key, nonce: sealed.nonce, aad, sealed: tampered }]);
      const refused = async (specifier) => import(specifier).then(() => 'imported', (e) => e.code);
      const { createRequire } = await import('node:module');
      console.log(JSON.stringify({
        exports: Object.keys(m),
        sealedBytes: sealed.sealed.length,
        opened: new TextDecoder().decode(opened),
        forged,
        demo: await refused('kafka-shredder/dist/src/dev/demo.js'),
        deep: await refused('kafka-shredder/dist/src/index.js'),
        version: createRequire(process.cwd() + '/')('kafka-shredder/package.json').version,
      }));
    `);
    expect(library.status, library.stderr).to.equal(0);
    const result = JSON.parse(library.stdout);
    expect(result.exports).to.include.members(['DecryptingConsumer', 'loadCryptoCore', 'sealWithFreshNonces', 'parseEnvelope', 'MasterKey', 'LocalMasterKey', 'Keyring', 'aes256Gcm']);
    expect(result).to.deep.include({ sealedBytes: 5 + 16, opened: 'hello', forged: null, version: manifest.version });
    expect(result.demo).to.equal('ERR_PACKAGE_PATH_NOT_EXPORTED');
    expect(result.deep).to.equal('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  describe('against the test broker', () => {
    let kafka: Kafka;
    let child: ChildProcessor | undefined;
    before(() => {
      kafka = testKafka();
    });
    after(async () => {
      if (child && child.child.exitCode === null && child.child.signalCode === null) {
        child.child.kill('SIGKILL');
        await child.exited;
      }
    });

    it('runs `kafka-shredder encrypt` from the installed copy (RocksDB from its prebuilt binary), and stops on SIGTERM with exit code 0', async () => {
      const setup = encryptorSetup({ SHREDDER_LOG_LEVEL: 'info' });
      child = startChildProcessor('encrypt', setup.env, [], join(app, 'node_modules', 'kafka-shredder', 'bin', 'kafka-shredder.js'));
      await child.waitForLog((l) => l.msg === 'keys partition restored', 60_000);
      const plaintext = '{"email":"someone@example.org"}';
      await produce(kafka, setup.input, [{ key: 'user-1', value: plaintext }]);
      const [partition, [record]] = [...(await readAtLeast(kafka, setup.output, 1))].find(([, records]) => records.length > 0)!;
      expect(record.key!.toString()).to.equal('user-1');
      expect(record.value!.includes(plaintext)).to.equal(false);
      const table = await readKeysTable(kafka, setup.keysTopic);
      expect(String(await decryptRecord(record, partition, table, setup.masterKey))).to.equal(plaintext);
      child.child.kill('SIGTERM');
      const exit = await child.exited;
      expect(exit.code, child.output().slice(-2000)).to.equal(0);
    });
  });
});
