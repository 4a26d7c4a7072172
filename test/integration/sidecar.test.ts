// Running as a sidecar: the HTTP endpoints an orchestrator probes and scrapes, progress of a long
// restore, and logs that never carry personal data or key material.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { requestForget } from '../../src/encryptor/forget-request.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { createLogger, subjectRefFor } from '../../src/observability/logger.js';
import { startHttpServer } from '../../src/observability/http-server.js';
import { startChildProcessor, type ChildProcessor } from '../support/child-processor.js';
import { decryptorSetup, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup } from '../support/encryptor.js';
import { createTopic, eventually, readTopic, testKafka, withSlowKeysReader } from '../support/kafka.js';
import { freePort, get } from '../support/http.js';
import { repoRoot } from '../support/repo-root.js';

/** The value of a Prometheus series whose name and labels contain the given fragments. */
function series(metrics: string, name: string, ...labels: string[]): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(name) && (l[name.length] === '{' || l[name.length] === ' ') && labels.every((x) => l.includes(x)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function stopChild(child: ChildProcessor): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.child.exitCode === null) child.child.kill('SIGTERM');
  return child.exited;
}

describe('sidecar', function () {
  this.timeout(180_000);
  let kafka: Kafka;
  before(() => {
    kafka = testKafka();
  });

  it('serves /healthz, /readyz and Prometheus /metrics on SHREDDER_HTTP_PORT, and stops on SIGTERM with exit code 0', async () => {
    const port = await freePort();
    const setup = encryptorSetup({ SHREDDER_HTTP_PORT: String(port), SHREDDER_LOG_LEVEL: 'info' });
    const child = startChildProcessor('encrypt', setup.env);
    try {
      await eventually('/healthz answers', async () => (await get(port, '/healthz').catch(() => undefined))?.status === 200, 60_000);
      const ready = await eventually('/readyz ready', async () => {
        const { status, body } = await get(port, '/readyz');
        return status === 200 ? JSON.parse(body) : undefined;
      }, 60_000);
      expect(ready.partitions.map((p: { partition: number; state: string }) => [p.partition, p.state])).to.deep.equal([[0, 'ready'], [1, 'ready'], [2, 'ready']]);
      const health = JSON.parse((await get(port, '/healthz')).body);
      expect(health).to.include({ status: 'ok', consumer: 'running' });

      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: setup.input, messages: [...Array(30).keys()].map((i) => ({ key: `user-${i % 6}`, value: `event-${i}` })) });
      await producer.send({ topic: setup.input, messages: [{ key: null, value: 'no subject' }] });
      await producer.disconnect();
      await requestForget(kafka, [setup.input], Buffer.from('user-0'));
      const route = `route="${setup.input}->${setup.output}"`;
      const metrics = await eventually('the records counted', async () => {
        const { body } = await get(port, '/metrics');
        return series(body, 'shredder_records_in_total', route) === 32 ? body : undefined;
      });
      expect(series(metrics, 'shredder_records_out_total', route)).to.equal(31); // 30 encrypted + the forget marker
      expect(series(metrics, 'shredder_records_dead_lettered_total', route)).to.equal(1);
      expect(series(metrics, 'shredder_keys_created_total')).to.equal(6);
      expect(series(metrics, 'shredder_subjects_forgotten_total')).to.equal(1);
      expect(series(metrics, 'shredder_forget_requests_total', route)).to.equal(1);
      for (const partition of [0, 1, 2]) expect(series(metrics, 'shredder_keys_restore_progress', `partition="${partition}"`)).to.equal(1);
      expect(series(metrics, 'shredder_batch_records_count', `topic="${setup.input}"`)).to.be.greaterThan(0);
      expect(series(metrics, 'shredder_batch_seconds_count', `topic="${setup.input}"`)).to.be.greaterThan(0);
      expect(series(metrics, 'shredder_crypto_seconds_per_record_count', `topic="${setup.input}"`)).to.be.greaterThan(0);
      expect(series(metrics, 'shredder_consumer_lag', `topic="${setup.input}"`)).to.be.at.least(0);
      // Prometheus' standard process metric names, and the build
      expect(series(metrics, 'process_cpu_seconds_total')).to.be.greaterThan(0);
      expect(series(metrics, 'nodejs_heap_size_used_bytes')).to.be.greaterThan(0);
      expect(metrics).not.to.contain('shredder_process_');
      expect(series(metrics, 'shredder_build_info', `version="${JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')).version}"`, `nodejs_version="${process.version}"`)).to.equal(1);
      expect(metrics).to.contain('processor="encrypt"');
      expect((await get(port, '/nothing')).status).to.equal(404);

      const stopping = Date.now();
      const exit = await stopChild(child);
      expect(exit.code, child.output().slice(-2000)).to.equal(0);
      expect(Date.now() - stopping).to.be.below(30_000);
      expect(child.logs.map((l) => l.msg)).to.include.members(['encrypt stopping', 'encryptor stopped']);
      await get(port, '/healthz').then(
        () => expect.fail('the HTTP server should be closed after the stop'),
        () => {},
      );
    } finally {
      await stopChild(child);
    }
  });

  it('shows a long keys restore progressing on /readyz and /metrics, ready once restored', async () => {
    const setup = encryptorSetup();
    await createTopic(kafka, { topic: setup.keysTopic, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] });
    // 150k key records, about 7 MB a partition: two fetches each at the restore's 4 MiB a partition
    // (junk wrapped keys: a restore writes them without unwrapping)
    const records = 150_000;
    const producer = kafka.producer();
    await producer.connect();
    for (let sent = 0; sent < records; sent += 15_000) {
      await producer.send({ topic: setup.keysTopic, messages: Array.from({ length: 15_000 }, (_, i) => ({ key: `subject-${sent + i}-`.padEnd(60, 'x'), value: randomBytes(74) })) });
    }
    await producer.disconnect();
    const decrypt = decryptorSetup(setup);
    const decryptor = await startDecryptor(decrypt, withSlowKeysReader(testKafka('slow-restore'), 700));
    const http = await startHttpServer(0, decryptor, createLogger('silent'), '127.0.0.1');
    try {
      const progressing = await eventually('a restore in progress', async () => {
        const { status, body } = await get(http.port, '/readyz');
        const readiness = JSON.parse(body);
        const restoring = readiness.partitions?.filter((p: { state: string; progress: number }) => p.state === 'restoring' && p.progress > 0 && p.progress < 1);
        return status === 503 && restoring?.length > 0 ? restoring : undefined;
      }, 60_000, 100);
      expect(progressing[0].progress).to.be.within(0, 1);
      const { body: during } = await get(http.port, '/metrics');
      const partial = [0, 1, 2].map((p) => series(during, 'shredder_keys_restore_progress', `partition="${p}"`) ?? 0);
      expect(partial.some((p) => p > 0 && p < 1) || partial.every((p) => p === 1), `progress ${partial}`).to.equal(true);
      await eventually('/readyz ready', async () => (await get(http.port, '/readyz')).status === 200, 90_000);
      const { body: after } = await get(http.port, '/metrics');
      const restored = [0, 1, 2].map((p) => series(after, 'shredder_keys_restored_records_total', `partition="${p}"`) ?? 0);
      expect(restored.reduce((a, b) => a + b, 0)).to.equal(records);
    } finally {
      await http.close();
      await decryptor.stop();
    }
  });

  it('logs JSON lines without personal data or key material: subjects only as keyed hashes', async () => {
    const setup = encryptorSetup({ SHREDDER_LOG_LEVEL: 'debug' });
    const decrypt = decryptorSetup(setup, { SHREDDER_LOG_LEVEL: 'debug' });
    const subjects = ['alice.liddell@example.org', 'bob.the.builder@example.org', 'carol+secret@example.org'];
    const personal = ['Alice Liddell', 'SSN 078-05-1120', '221B Baker Street', 'IBAN DE89370400440532013000'];
    const encrypt = startChildProcessor('encrypt', setup.env);
    const decryptChild = startChildProcessor('decrypt', decrypt.env);
    try {
      await encrypt.waitForLog((l) => l.msg === 'encryptor started', 60_000);
      await decryptChild.waitForLog((l) => l.msg === 'decryptor started', 60_000);
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: setup.input,
        messages: subjects.flatMap((subject, s) => personal.map((p) => ({ key: subject, value: JSON.stringify({ subject, detail: p, n: s }), headers: { 'x-user': subject } }))),
      });
      // a dead letter of each processor, both carrying personal data
      await producer.send({ topic: setup.input, messages: [{ key: null, value: `${personal[0]} without a key` }] });
      await producer.send({ topic: setup.output, messages: [{ key: subjects[2], value: `not an envelope: ${personal[1]}` }] });
      await producer.disconnect();
      await requestForget(kafka, [setup.input], Buffer.from(subjects[0]));
      const total = subjects.length * personal.length + 1;
      await eventually('decrypted output', async () => [...(await readTopic(kafka, decrypt.output)).values()].flat().length >= total, 60_000);
      await encrypt.waitForLog((l) => l.msg === 'subject forgotten: key destroyed');
      await decryptChild.waitForLog((l) => l.msg === 'forget marker forwarded');
      await decryptChild.waitForLog((l) => l.msg === 'record dead-lettered');
      await encrypt.waitForLog((l) => l.msg === 'record dead-lettered');
    } finally {
      await Promise.all([stopChild(encrypt), stopChild(decryptChild)]);
    }

    // every data key ever created, unwrapped: none of it may appear in the logs in any encoding
    const master = new MasterKey(setup.masterKey, 1);
    const dataKeys: Buffer[] = [];
    for (const [, records] of await readTopic(kafka, setup.keysTopic)) {
      for (const r of records) if (r.key?.length && r.value) dataKeys.push(Buffer.from(master.unwrap(new Uint8Array(r.key), new Uint8Array(r.value)).key));
    }
    expect(dataKeys.length).to.equal(subjects.length);
    const secrets = [...subjects, ...personal];
    for (const key of [setup.masterKey, ...dataKeys]) secrets.push(key.toString('base64'), key.toString('hex'), key.toString('base64url'));
    const output = encrypt.output() + decryptChild.output();
    for (const secret of secrets) expect(output.includes(secret), `the logs contain ${secret.slice(0, 12)}...`).to.equal(false);
    // every line is JSON, and the lines about a subject name it by its keyed hash
    const lines = output.split('\n').filter((l) => l.trim() !== '');
    expect(lines.filter((l) => { try { JSON.parse(l); return false; } catch { return true; } })).to.deep.equal([]);
    const forgotten = encrypt.logs.find((l) => l.msg === 'subject forgotten: key destroyed')!;
    expect(forgotten.subject).to.equal(subjectRefFor(new MasterKey(setup.masterKey, 1))(Buffer.from(subjects[0])));
    for (const msg of ['partitions assigned', 'keys partition restored', 'encryptor started', 'encryptor stopped']) expect(encrypt.logs.map((l) => l.msg)).to.include(msg);
    for (const msg of ['partitions assigned', 'keys partition restored', 'decryptor started', 'decryptor stopped']) expect(decryptChild.logs.map((l) => l.msg)).to.include(msg);
  });
});
