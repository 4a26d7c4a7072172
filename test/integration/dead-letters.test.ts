// Dead letters against the real broker: their context headers, SHREDDER_ERRORS_TOLERANCE=none, and a
// dead letter topic that keeps plaintext longer than the plaintext retention.
import { expect } from 'chai';
import type { IHeaders, Kafka } from 'kafkajs';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import { startChildProcessor } from '../support/child-processor.js';
import { decryptorSetup, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor } from '../support/encryptor.js';
import { allRecords, createTopic, eventually, produce, readAtLeast, readExactly, readTopic, testKafka, withAdmin } from '../support/kafka.js';
import type { Decryptor } from '../../src/decryptor/decryptor.js';

const text = (headers: IHeaders | undefined, name: string) => headers?.[name]?.toString();

describe('dead letters', function () {
  this.timeout(120_000);
  let kafka: Kafka;
  const running: (Encryptor | Decryptor)[] = [];
  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    for (const processor of running.splice(0)) await processor.stop();
  });

  it('carry Kafka Connect-style context: class, stage, source topic, partition and offset, from both processors', async () => {
    const setup = encryptorSetup();
    running.push(await startEncryptor(setup));
    await produce(kafka, setup.input, [{ key: 'gina', value: 'gina-1', partition: 2 }, { key: null, value: 'orphan', partition: 2 }]);
    await readAtLeast(kafka, setup.output, 1);
    await produce(kafka, setup.output, [{ key: 'gina', value: 'not an envelope', partition: 1 }]);
    running.push(await startDecryptor(decryptorSetup(setup)));
    const dead = allRecords(await readExactly(kafka, setup.dlqTopic, 2));
    const fromEncryptor = dead.find((d) => d.value!.toString() === 'orphan')!;
    expect(text(fromEncryptor.headers, 'shredder.error')).to.equal('no subject: the record key is null');
    expect(text(fromEncryptor.headers, 'shredder.source')).to.equal(`${setup.input}/2/1`);
    expect(text(fromEncryptor.headers, 'shredder.error.class')).to.equal('NoSubject');
    expect(text(fromEncryptor.headers, 'shredder.error.stage')).to.equal('subject');
    expect(text(fromEncryptor.headers, 'shredder.error.topic')).to.equal(setup.input);
    expect(text(fromEncryptor.headers, 'shredder.error.partition')).to.equal('2');
    expect(text(fromEncryptor.headers, 'shredder.error.offset')).to.equal('1');
    const fromDecryptor = dead.find((d) => d.value!.toString() === 'not an envelope')!;
    expect(text(fromDecryptor.headers, 'shredder.error.class')).to.equal('InvalidEnvelope');
    expect(text(fromDecryptor.headers, 'shredder.error.stage')).to.equal('parse');
    expect(text(fromDecryptor.headers, 'shredder.error.topic')).to.equal(setup.output);
    expect(text(fromDecryptor.headers, 'shredder.error.partition')).to.equal('1');
    expect(text(fromDecryptor.headers, 'shredder.error.offset')).to.equal(text(fromDecryptor.headers, 'shredder.source')!.split('/')[2]);
  });

  it('SHREDDER_ERRORS_TOLERANCE=none stops the encryptor at the first bad record, naming it, with exit code 1 and nothing of its batch committed', async () => {
    const setup = encryptorSetup({ SHREDDER_ERRORS_TOLERANCE: 'none', SHREDDER_LOG_LEVEL: 'info' });
    const strict = startChildProcessor('encrypt', setup.env);
    await strict.waitForLog((l) => l.msg === 'encryptor started', 60_000);
    await produce(kafka, setup.input, ['a', 'b', 'c'].map((v) => ({ key: 'hank', value: `hank-${v}`, partition: 0 })));
    await readExactly(kafka, setup.output, 3);
    await produce(kafka, setup.input, [{ key: null, value: 'orphan', partition: 0 }, { key: 'hank', value: 'hank-d', partition: 0 }]);
    const exit = await Promise.race([strict.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 40_000))]);
    expect(exit, strict.output().slice(-2000)).to.deep.equal({ code: 1, signal: null });
    const errors = strict.logs.filter((l) => (l.level as number) >= 50);
    expect(errors.map((l) => l.msg)).to.deep.equal(['record not tolerated', 'encrypt failed']);
    expect(String(errors[0].error)).to.contain(`the record at ${setup.input}/0/3 cannot be processed (NoSubject: no subject`);
    expect(strict.output()).not.to.contain('    at ');
    expect(strict.output()).not.to.contain('orphan');
    // nothing of the failed batch: no output, no dead letter, the committed offset before the bad record
    expect(allRecords(await readTopic(kafka, setup.output))).to.have.length(3);
    expect(allRecords(await readTopic(kafka, setup.dlqTopic))).to.have.length(0);
    const committed = await withAdmin(kafka, (admin) => admin.fetchOffsets({ groupId: setup.config.groupId, topics: [setup.input] }));
    expect(committed[0].partitions.find((p) => p.partition === 0)!.offset).to.equal('3');

    // the operator chooses to tolerate it: dead-lettered, and everything else once
    const tolerant = startChildProcessor('encrypt', { ...setup.env, SHREDDER_ERRORS_TOLERANCE: 'all' });
    try {
      await readExactly(kafka, setup.dlqTopic, 1);
      expect(allRecords(await readExactly(kafka, setup.output, 4))).to.have.length(4);
    } finally {
      tolerant.child.kill('SIGTERM');
      await tolerant.exited;
    }
  });

  it('warns when an existing dead letter topic keeps its plaintext longer than SHREDDER_PLAINTEXT_RETENTION_MS', async () => {
    const setup = encryptorSetup({ SHREDDER_LOG_LEVEL: 'info' });
    await createTopic(kafka, { topic: setup.dlqTopic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '-1' }] });
    const child = startChildProcessor('encrypt', setup.env);
    try {
      const warning = await child.waitForLog((l) => l.topic === setup.dlqTopic && l.level === 40, 60_000);
      expect(warning.msg).to.contain('dead letters are plaintext');
      expect(warning).to.include({ retentionMs: -1, limitMs: 86_400_000 });
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
    }
  });

  it('creates the dead letter topic with the plaintext retention', async () => {
    const setup = encryptorSetup({ SHREDDER_PLAINTEXT_RETENTION_MS: '3600000' });
    running.push(await startEncryptor(setup));
    const retention = await eventually('the dead letter topic', () =>
      withAdmin(kafka, async (admin) => {
        const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: setup.dlqTopic }] });
        return resources[0].configEntries.find((e) => e.configName === 'retention.ms')?.configValue;
      }),
    );
    expect(retention).to.equal('3600000');
  });
});
