// `kafka-shredder export <subject>` against the real broker, run as a user runs it (the CLI in a child
// process): records written by Kafka's Java producer (its default partitioner) and by kafkajs on two
// routes, a forget and a new key generation in between, a forgotten and an unknown subject, field mode
// with the subject in the value, and the output file. Every line is checked against what was produced.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import type { ExportedRecord } from '../../src/export/exported-record.js';
import type { ExportSummary } from '../../src/export/subject-export.js';
import { subjectPartition } from '../../src/kafka/subject-partition.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { javaProduce } from '../support/java-console.js';
import { allRecords, createTopic, produce, readAtLeast, testBrokers, testKafka, uniqueName } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

interface Exported {
  code: number | null;
  lines: ExportedRecord[];
  summary: ExportSummary;
  stderr: string;
}

/** Runs the export as a user does; the records from stdout (or `--output`), the `--json` summary. */
function runExport(setup: EncryptorSetup, subject: string, args: string[] = []): Promise<Exported> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'export', subject, '--json', ...args], { env: { PATH: process.env.PATH, ...setup.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        const toFile = args.includes('--output');
        const records = toFile ? readFileSync(args[args.indexOf('--output') + 1], 'utf8') : stdout;
        const summaryText = (toFile ? stdout : stderr).trim().split('\n').at(-1)!;
        resolve({ code, lines: records.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ExportedRecord), summary: JSON.parse(summaryText) as ExportSummary, stderr });
      } catch (err) {
        reject(new Error(`export ${subject} (exit ${code}) printed no summary: ${(err as Error).message}\nstdout: ${stdout.slice(0, 2000)}\nstderr: ${stderr.slice(0, 2000)}`));
      }
    });
  });
}

const text = (bytes: ExportedRecord['value']) => (bytes && 'text' in bytes ? bytes.text : undefined);

describe('kafka-shredder export', function () {
  this.timeout(180_000);
  let kafka: Kafka;
  let encryptor: Encryptor | undefined;
  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    await encryptor?.stop();
    encryptor = undefined;
  });

  it("writes a subject's records from every route, decrypted, and nobody else's, across a forget and a new key generation", async () => {
    const second = { from: uniqueName('plain'), to: uniqueName('encrypted') };
    const setup = encryptorSetup({ SHREDDER_ROUTES: `${uniqueName('plain')}->${uniqueName('encrypted')},${second.from}->${second.to}` });
    const [first] = setup.config.routes;
    await createTopic(kafka, { topic: first.from, numPartitions: 3 });
    await createTopic(kafka, { topic: second.from, numPartitions: 3 });
    encryptor = await startEncryptor(setup);

    // the Java producer's default partitioner places each subject; 40 subjects, 3 records each
    const subjects = Array.from({ length: 40 }, (_, i) => `user-${i}@example.org`);
    const javaRecords = subjects.flatMap((s) => [1, 2, 3].map((n) => ({ key: s, value: `{"subject":"${s}","n":${n}}` })));
    await javaProduce(testBrokers(), first.from, 'lz4', javaRecords);
    // the second route: a binary value and headers, from kafkajs
    const binary = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
    await produce(kafka, second.from, [
      { key: 'user-7@example.org', value: binary, headers: { source: 'billing' } },
      { key: 'user-8@example.org', value: 'not hers' },
    ]);
    const encrypted = await readAtLeast(kafka, first.to, javaRecords.length);
    await readAtLeast(kafka, second.to, 2);

    const alice = 'user-7@example.org';
    const before = await runExport(setup, alice);
    expect(before.code, before.stderr).to.equal(0);
    expect(before.summary.status).to.equal('exported');
    // the subject's partition, as Java's partitioner chose it
    const partition = [...encrypted].find(([, records]) => records.some((r) => r.key?.toString() === alice))![0];
    expect(subjectPartition(Buffer.from(alice), 3)).to.equal(partition);
    expect(before.lines.map((l) => [l.topic, l.partition, text(l.key), l.status, text(l.value)])).to.deep.equal([
      ...[1, 2, 3].map((n) => [first.to, partition, alice, 'readable', `{"subject":"${alice}","n":${n}}`]),
      [second.to, partition, alice, 'readable', undefined],
    ]);
    const binaryLine = before.lines[3];
    expect(binaryLine.value).to.deep.equal({ base64: binary.toString('base64') });
    expect(binaryLine.headers).to.deep.equal([{ name: 'source', value: { text: 'billing' } }]);
    // offsets and timestamps are the encrypted records' own
    const mine = encrypted.get(partition)!.filter((r) => r.key?.toString() === alice);
    expect(before.lines.slice(0, 3).map((l) => [l.offset, l.timestamp])).to.deep.equal(mine.map((r) => [r.offset, new Date(Number(r.timestamp)).toISOString()]));
    const firstTopic = before.summary.topics.find((t) => t.topic === first.to)!;
    expect(firstTopic.partitions).to.deep.equal([partition]);
    expect(firstTopic.scanned).to.equal(encrypted.get(partition)!.length);
    expect(firstTopic.records).to.deep.include({ readable: 3, shredded: 0 });

    // a forget, then a record under the subject's next key
    await requestForget(kafka, [first.from, second.from], Buffer.from(alice));
    await produce(kafka, first.from, [{ key: alice, value: 'after the forget' }]);
    await readAtLeast(kafka, first.to, javaRecords.length + 2);
    await readAtLeast(kafka, second.to, 3);
    const after = await runExport(setup, alice);
    expect(after.code, after.stderr).to.equal(0);
    const firstLines = after.lines.filter((l) => l.topic === first.to);
    expect(firstLines.map((l) => [l.status, text(l.value)])).to.deep.equal([
      ['shredded', undefined],
      ['shredded', undefined],
      ['shredded', undefined],
      ['forget', undefined],
      ['readable', 'after the forget'],
    ]);
    expect(firstLines.slice(0, 3).every((l) => l.value === null)).to.equal(true);
    expect(after.lines.filter((l) => l.topic === second.to).map((l) => l.status)).to.deep.equal(['shredded', 'forget']);
    expect(after.summary.keysTopic.partitions[0]).to.include({ partition, liveKey: true });
    expect(after.summary.keysTopic.partitions[0].forgottenAt).to.be.a('string');

    // forgotten, with no key since: exit 6, its records listed without values
    const bob = 'user-12@example.org';
    await requestForget(kafka, [first.from, second.from], Buffer.from(bob));
    await readAtLeast(kafka, first.to, javaRecords.length + 3);
    const forgotten = await runExport(setup, bob);
    expect(forgotten.code, forgotten.stderr).to.equal(6);
    expect(forgotten.summary.status).to.equal('forgotten');
    expect(forgotten.lines.filter((l) => l.topic === first.to).map((l) => l.status)).to.deep.equal(['shredded', 'shredded', 'shredded', 'forget']);
    expect(forgotten.lines.every((l) => l.value === null && text(l.key) === bob)).to.equal(true);

    // never seen: exit 5, nothing written
    const unknown = await runExport(setup, 'nobody@example.org');
    expect(unknown.code, unknown.stderr).to.equal(5);
    expect(unknown.lines).to.deep.equal([]);
    expect(unknown.summary.status).to.equal('unknown');

    // to a file, readable by its owner only; the same lines as on stdout
    const file = join(mkdtempSync(join(tmpdir(), 'export-')), 'user-3.jsonl');
    const toStdout = await runExport(setup, 'user-3@example.org');
    const toFile = await runExport(setup, 'user-3@example.org', ['--output', file]);
    expect(toFile.code).to.equal(0);
    expect(toFile.lines).to.deep.equal(toStdout.lines);
    expect(toFile.lines.map((l) => text(l.value))).to.deep.equal([1, 2, 3].map((n) => `{"subject":"user-3@example.org","n":${n}}`));
    expect(statSync(file).mode & 0o777).to.equal(0o600);

    // on a terminal (util-linux script gives it one), a progress bar: records scanned and the rate; none through a pipe
    const onTerminal = spawnSync('script', ['-qec', `'${process.execPath}' '${join(repoRoot(), 'bin/kafka-shredder.js')}' export user-3@example.org --output '${file}'`, '/dev/null'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, ...setup.env },
      timeout: 60_000,
    });
    expect(onTerminal.status, onTerminal.stdout).to.equal(0);
    expect(onTerminal.stdout).to.match(/\r\[[#-]{24}\] +\d+% {2}[\d,]+ records scanned, [\d,]+\/s, 3 of the subject's {2}\(/);
    expect(onTerminal.stdout).to.contain('EXPORTED: 3 records of the subject');
    expect(toStdout.stderr).to.not.contain('records scanned');
  });

  it('with pseudonymous record keys: finds the subject through its sealed id in the keys topic, and lists its records under the subject id', async () => {
    const setup = encryptorSetup({ SHREDDER_RECORD_KEYS: 'pseudonym' });
    await createTopic(kafka, { topic: setup.input, numPartitions: 3 });
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [
      { key: 'alice', value: 'alice-1' },
      { key: 'bob', value: 'bob-1' },
      { key: 'alice', value: 'alice-2' },
    ]);
    await readAtLeast(kafka, setup.output, 3);
    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    await produce(kafka, setup.input, [{ key: 'alice', value: 'alice-3' }]);
    const encrypted = allRecords(await readAtLeast(kafka, setup.output, 5));
    expect(encrypted.every((r) => r.key!.length === 16)).to.equal(true);

    const exported = await runExport(setup, 'alice');
    expect(exported.code, exported.stderr).to.equal(0);
    expect(exported.lines.map((l) => [text(l.key), l.status, text(l.value)])).to.deep.equal([
      ['alice', 'shredded', undefined],
      ['alice', 'shredded', undefined],
      ['alice', 'forget', undefined],
      ['alice', 'readable', 'alice-3'],
    ]);
    const bob = await runExport(setup, 'bob');
    expect(bob.lines.map((l) => [text(l.key), l.status, text(l.value)])).to.deep.equal([['bob', 'readable', 'bob-1']]);
  });

  for (const recordKeys of ['subject', 'pseudonym']) it(`with the subject in the value (record keys: ${recordKeys}), reads every partition and takes the records whose subject field is the subject`, async () => {
    const setup = encryptorSetup({ SHREDDER_FIELDS: '$.email', SHREDDER_SUBJECT_FIELD: '$.user', SHREDDER_RECORD_KEYS: recordKeys });
    await createTopic(kafka, { topic: setup.input, numPartitions: 3 });
    encryptor = await startEncryptor(setup);
    // record keys are order ids: a user's records land on every partition
    const records = Array.from({ length: 60 }, (_, i) => ({ key: `order-${i}`, value: JSON.stringify({ user: `u${i % 4}`, email: `u${i % 4}-${i}@example.org`, total: i }) }));
    await produce(kafka, setup.input, records);
    const encrypted = allRecords(await readAtLeast(kafka, setup.output, records.length));
    expect(encrypted.some((r) => r.value!.toString().includes('@example.org'))).to.equal(false);

    const exported = await runExport(setup, 'u1');
    expect(exported.code, exported.stderr).to.equal(0);
    const expected = records.filter((r) => JSON.parse(r.value).user === 'u1');
    expect(exported.lines.map((l) => text(l.value)).sort()).to.deep.equal(expected.map((r) => r.value).sort());
    expect(new Set(exported.lines.map((l) => l.partition)).size).to.be.greaterThan(1);
    expect(exported.summary.topics[0].partitions).to.deep.equal([0, 1, 2]);
    expect(exported.summary.topics[0].scanned).to.equal(records.length);
    // --partition narrows it to one
    const one = await runExport(setup, 'u1', ['--partition', '1']);
    expect(one.lines.map((l) => l.partition)).to.satisfy((ps: number[]) => ps.every((p) => p === 1));
    expect(one.lines.length).to.equal(exported.lines.filter((l) => l.partition === 1).length);
  });
});
