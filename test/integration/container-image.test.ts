// kafka-shredder's container image, built from the Containerfile with podman and run for real against
// the local broker: encrypt, forget and decrypt in containers on a read-only root filesystem as user
// 1000; /healthz, /readyz and /metrics reached from outside; a clean stop on SIGTERM within the stop
// bound; nothing of the build toolchain in the image; and the Kubernetes Deployment run with
// `podman kube play`. Skips, saying why, where podman cannot run (not root, not installed).
import { expect } from 'chai';
import { chmodSync, chownSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { parseAllDocuments, stringify } from 'yaml';
import { encryptorSetup } from '../support/encryptor.js';
import { freePorts, get } from '../support/http.js';
import { allRecords, eventually, produce, readExactly, testKafka, uniqueName } from '../support/kafka.js';
import { buildImage, IMAGE, podman, podmanMissing, podmanOk } from '../support/podman.js';
import { repoRoot } from '../support/repo-root.js';

/** The processors' stop bound (docs/operations.md). */
const STOP_BOUND_MS = 30_000;
const text = (value: Buffer | null | undefined) => (value == null ? null : value.toString());

/** A state folder the container's user (1000) owns, as a Kubernetes emptyDir with fsGroup would be. */
function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'shredder-container-state-'));
  chownSync(dir, 1000, 1000);
  return dir;
}

/** `-e NAME=VALUE` for each variable (the state dir stays the image's, a mounted volume). */
const envArgs = (env: Record<string, string>) => Object.entries(env).filter(([name]) => name !== 'SHREDDER_STATE_DIR').flatMap(([name, value]) => ['-e', `${name}=${value}`]);

describe('the container image', function () {
  this.timeout(30 * 60_000);
  let kafka: Kafka;
  const containers: string[] = [];

  before(async function () {
    const missing = await podmanMissing();
    if (missing) {
      console.log(`      (skipped: ${missing})`);
      this.skip();
    }
    kafka = testKafka();
    await buildImage((line) => console.log(`    [image] ${line}`));
  });

  afterEach(async () => {
    for (const name of containers.splice(0)) await podman(['rm', '-f', '-t', '0', name]);
  });

  it('runs as user 1000 with kafka-shredder as its exec-form entrypoint, carries OCI labels, and holds no build tool', async () => {
    const [inspected] = JSON.parse(await podmanOk(['image', 'inspect', IMAGE])) as { Size: number; Config: { User: string; Entrypoint: string[]; Labels: Record<string, string>; Env: string[] } }[];
    console.log(`      image size: ${(inspected.Size / 1e6).toFixed(0)} MB`);
    expect(inspected.Config.User).to.equal('1000:1000');
    expect(inspected.Config.Entrypoint).to.deep.equal(['node', '/app/bin/kafka-shredder.js']);
    expect(inspected.Config.Labels).to.include({ 'org.opencontainers.image.title': 'kafka-shredder', 'org.opencontainers.image.licenses': 'Apache-2.0' });
    expect(inspected.Config.Labels['org.opencontainers.image.version']).to.equal(JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')).version);
    expect(inspected.Config.Env).to.include('SHREDDER_STATE_DIR=/var/lib/kafka-shredder');

    const help = await podman(['run', '--rm', '--network', 'host', '--read-only', IMAGE, '--help']);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.contain('encrypt').and.contain('decrypt').and.contain('forget');
    const listing = await podmanOk(['run', '--rm', '--network', 'host', '--read-only', '--entrypoint', 'sh', IMAGE, '-c',
      'id -u; ls /app/node_modules; ls /app/dist/src; command -v java javac mvn gcc g++ tsc asc || true; ls /app/node_modules/.bin 2>/dev/null || true']);
    // the PKCS#11 addon, built in the build stage, loads in the runtime stage
    const pkcs11 = await podman(['run', '--rm', '--network', 'host', '--read-only', '--entrypoint', 'node', IMAGE, '-e', 'require("/app/node_modules/pkcs11js"); console.log("pkcs11js loads")']);
    expect(pkcs11.stdout.trim(), pkcs11.stderr).to.equal('pkcs11js loads');
    const [uid, ...rest] = listing.trim().split('\n');
    expect(uid).to.equal('1000');
    for (const tool of ['typescript', 'assemblyscript', 'mocha', 'chai', 'eslint', '@kafkajs', 'kubernetes-models', 'java', 'javac', 'mvn', 'gcc', 'g++', 'tsc', 'asc', 'dev']) {
      expect(rest, `${tool} in the image`).to.not.include(tool);
    }
    expect(rest.some((line) => line.endsWith('/java') || line.endsWith('/gcc'))).to.equal(false);
    expect(rest).to.include('kafkajs').and.include('rocksdb');
  });

  it('encrypts, forgets and decrypts end to end in containers on a read-only root; probes and metrics answer outside; SIGTERM stops it cleanly within the bound', async () => {
    const setup = encryptorSetup();
    const [encryptPort, decryptPort] = await freePorts(2);
    const keyDir = mkdtempSync(join(tmpdir(), 'shredder-container-key-'));
    chmodSync(keyDir, 0o755); // (the container's user 1000 reads it, as from a Secret volume)
    writeFileSync(join(keyDir, 'master-key'), setup.masterKey.toString('base64'), { mode: 0o444 });
    const common = { ...setup.env, SHREDDER_MASTER_KEY: '', SHREDDER_MASTER_KEY_FILE: '/run/secrets/shredder/master-key', SHREDDER_LOG_LEVEL: 'info' };
    delete (common as Record<string, string>).SHREDDER_MASTER_KEY;
    const volumes = ['-v', `${keyDir}:/run/secrets/shredder:ro`];
    const start = async (name: string, command: string, env: Record<string, string>) => {
      containers.push(name);
      await podmanOk(['run', '-d', '--name', name, '--network', 'host', '--read-only', '-v', `${stateDir()}:/var/lib/kafka-shredder`, ...volumes, ...envArgs(env), IMAGE, command]);
    };
    const encryptor = uniqueName('encryptor');
    await start(encryptor, 'encrypt', { ...common, SHREDDER_HTTP_PORT: String(encryptPort) });
    await eventually('/readyz of the encryptor', async () => (await get(encryptPort, '/readyz').catch(() => undefined))?.status === 200, 120_000, 500);
    await produce(kafka, setup.input, [{ key: 'alice', value: 'alice-1' }, { key: 'bob', value: 'bob-1' }]);
    await readExactly(kafka, setup.output, 2);
    const forget = await podman(['run', '--rm', '--network', 'host', '--read-only', ...volumes, ...envArgs(common), IMAGE, 'forget', 'alice']);
    expect(forget.code, forget.stderr).to.equal(0);
    await readExactly(kafka, setup.output, 3); // the forget marker: alice's key is destroyed

    const output = uniqueName('decrypted');
    const decryptor = uniqueName('decryptor');
    await start(decryptor, 'decrypt', { ...common, SHREDDER_HTTP_PORT: String(decryptPort), SHREDDER_ROUTES: `${setup.output}->${output}`, SHREDDER_GROUP_ID: uniqueName('decrypt') });
    await eventually('/readyz of the decryptor', async () => (await get(decryptPort, '/readyz').catch(() => undefined))?.status === 200, 120_000, 500);
    const out = allRecords(await readExactly(kafka, output, 3));
    expect(out.filter((r) => text(r.key) === 'bob').map((r) => text(r.value))).to.deep.equal(['bob-1']);
    const alice = out.filter((r) => text(r.key) === 'alice');
    expect(alice.map((r) => r.value)).to.deep.equal([null, null]); // shredded, then the forget marker
    expect(text(alice[0].headers?.['shredder.status'] as Buffer)).to.equal('shredded');

    const metrics = (await get(encryptPort, '/metrics')).body;
    expect(metrics).to.match(new RegExp(`shredder_records_in_total\\{[^}]*route="${setup.input}->${setup.output}"[^}]*\\} 3`));
    expect((await get(decryptPort, '/healthz')).status).to.equal(200);

    const started = Date.now();
    await podmanOk(['stop', '-t', String(STOP_BOUND_MS / 1000 + 15), encryptor]);
    const stopMs = Date.now() - started;
    const exitCode = (await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', encryptor])).trim();
    expect(exitCode, (await podman(['logs', '--tail', '20', encryptor])).stdout).to.equal('0');
    expect(stopMs).to.be.below(STOP_BOUND_MS);
    console.log(`      stopped on SIGTERM in ${stopMs} ms`);
    const logs = (await podman(['logs', encryptor])).stdout;
    expect(logs).to.not.contain('alice-1').and.not.contain(setup.masterKey.toString('base64'));
  });

  it('runs the Kubernetes Deployment of deploy/kubernetes with podman kube play: ready, encrypting, the master key from the Secret as a file', async () => {
    const setup = encryptorSetup();
    const [port] = await freePorts(1);
    const [deployment] = parseAllDocuments(readFileSync(join(repoRoot(), 'deploy/kubernetes/base/encryptor.yaml'), 'utf8')).map((d) => d.toJSON());
    const configMap = parseAllDocuments(readFileSync(join(repoRoot(), 'deploy/kubernetes/base/configmap.yaml'), 'utf8'))[0].toJSON() as { data: Record<string, string> };
    // what an overlay sets: the image, one replica, this broker and topics; and the host's network (the test broker listens on loopback)
    const name = uniqueName('kube');
    deployment.metadata.name = name;
    deployment.spec.replicas = 1;
    const pod = deployment.spec.template.spec;
    pod.hostNetwork = true;
    const container = pod.containers[0];
    container.image = IMAGE;
    for (const key of Object.keys(configMap.data)) configMap.data[key] = setup.env[key] ?? configMap.data[key];
    delete container.envFrom;
    container.env = [
      ...Object.entries(configMap.data).map(([key, value]) => ({ name: key, value })),
      ...container.env.map((e: { name: string; value: string }) => (e.name === 'SHREDDER_HTTP_PORT' ? { ...e, value: String(port) } : e)),
    ];
    // (with the host's network a port is the process's own: podman refuses port mappings, so the probes name the number)
    delete container.ports;
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) probe.httpGet.port = port;
    // The Secret as podman keeps one for kube play: a podman secret holding the Secret's YAML. Podman 4.3
    // (Debian 12) writes a `data` value to the volume as it stands, not base64-decoded as Kubernetes
    // does: so here `data` holds the file's text itself (the base64 master key, valid base64 too).
    const secretName = 'kafka-shredder-master-key';
    const folder = mkdtempSync(join(tmpdir(), 'shredder-kube-'));
    const secretFile = join(folder, 'secret.yaml');
    writeFileSync(secretFile, stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: secretName }, data: { 'master-key': setup.masterKey.toString('base64') } }));
    const file = join(folder, 'deployment.yaml');
    writeFileSync(file, stringify(deployment));

    await podman(['secret', 'rm', secretName]);
    await podmanOk(['secret', 'create', secretName, secretFile]);
    try {
      await podmanOk(['kube', 'play', file], 300_000);
      await eventually('/readyz of the pod', async () => (await get(port, '/readyz').catch(() => undefined))?.status === 200, 120_000, 500);
      await produce(kafka, setup.input, [{ key: 'carol', value: 'carol-1' }]);
      const [record] = allRecords(await readExactly(kafka, setup.output, 1));
      expect(record.value![0]).to.equal(0x01); // an envelope v1, not the plaintext
      expect(record.value!.includes(Buffer.from('carol-1'))).to.equal(false);
    } finally {
      await podman(['kube', 'down', file], 120_000);
      await podman(['secret', 'rm', secretName]);
    }
  });
});
