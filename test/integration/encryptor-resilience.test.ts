// Exactly-once across crashes and rebalances: every input record appears once, in order, encrypted.
import { expect } from 'chai';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { decryptRecord, readKeysTable } from '../support/decrypt.js';
import { encryptorSetup, startEncryptor } from '../support/encryptor.js';
import { killRepeatedly, startChildProcessor, type ChildProcessor } from '../support/child-processor.js';
import { produceSlowly } from '../support/produce.js';
import { SHUTDOWN_TIMEOUT_MS } from '../../src/cli/run-processor.js';
import { createTopic, eventually, readAtLeast, readTopic, testKafka } from '../support/kafka.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function expectExactlyOnce(kafka: Kafka, input: string, output: string, keysTopic: string, masterKey: Buffer, total: number) {
  const outputs = await readAtLeast(kafka, output, total, 90_000, 1000); // duplicates fail below, with the details
  const inputs = await readTopic(kafka, input);
  const table = await readKeysTable(kafka, keysTopic);
  for (const [partition, records] of inputs) {
    const out: KafkaMessage[] = outputs.get(partition) ?? [];
    const decrypted: string[] = [];
    for (const record of out) {
      expect(record.value!.includes(Buffer.from('event-')), 'plaintext in the output').to.equal(false);
      const plaintext = await decryptRecord(record, partition, table, masterKey);
      decrypted.push(plaintext === 'shredded' ? 'shredded' : plaintext.toString());
    }
    expect(decrypted, `partition ${partition}`).to.deep.equal(records.map((r) => r.value!.toString()));
  }
}

/** Every subject has had exactly one key: no instance ever created a second one. */
async function expectOneKeyPerSubject(kafka: Kafka, keysTopic: string, subjects = 37) {
  const keyRecords = [...(await readTopic(kafka, keysTopic)).values()].flat();
  const bySubject = new Map<string, number>();
  for (const r of keyRecords) bySubject.set(r.key!.toString(), (bySubject.get(r.key!.toString()) ?? 0) + 1);
  expect([...bySubject.entries()].filter(([, n]) => n !== 1)).to.deep.equal([]);
  expect(bySubject.size).to.equal(subjects);
}

describe('encryptor exactly-once', function () {
  this.timeout(240_000);
  let kafka: Kafka;
  before(() => {
    kafka = testKafka();
  });

  it('loses and duplicates nothing when the encryptor process is SIGKILLed mid-stream, several times', async () => {
    const setup = encryptorSetup({ SHREDDER_LOG_LEVEL: 'info' });
    const total = 3000;
    let child: ChildProcessor = startChildProcessor('encrypt', setup.env);
    await child.waitForLog((l) => l.msg === 'encryptor started', 60_000);
    // ~45 s of input, so that every restarted encryptor (which waits up to the 10 s session timeout
    // of the killed one) still finds records in flight
    const producing = produceSlowly(kafka, setup.input, total, 20, 300);
    child = await killRepeatedly(child, 'encrypt', setup.env, 3);
    await producing;
    try {
      await expectExactlyOnce(kafka, setup.input, setup.output, setup.keysTopic, setup.masterKey, total);
      await expectOneKeyPerSubject(kafka, setup.keysTopic);
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
    }
  });

  it('loses and duplicates nothing, and keys each subject once, when SIGKILLed in a backlog of new subjects (large batches keyed in one pass)', async () => {
    const setup = encryptorSetup({ SHREDDER_LOG_LEVEL: 'info' });
    // a backlog of new subjects, three records each, large enough for batches of thousands of records
    // (sealed on the sealing thread once their subjects are keyed) and several seconds of work
    const subjects = 15_000;
    const total = 3 * subjects;
    await createTopic(kafka, { topic: setup.input, numPartitions: 3 });
    const producer = kafka.producer();
    await producer.connect();
    for (let sent = 0; sent < total; sent += 5000) {
      await producer.send({
        topic: setup.input,
        messages: Array.from({ length: 5000 }, (_, i) => ({ key: `user-${(sent + i) % subjects}`, value: `event-${sent + i}-`.padEnd(180, '.') })),
      });
    }
    await producer.disconnect();
    let child: ChildProcessor = startChildProcessor('encrypt', setup.env);
    child = await killRepeatedly(child, 'encrypt', setup.env, 2);
    try {
      await expectExactlyOnce(kafka, setup.input, setup.output, setup.keysTopic, setup.masterKey, total);
      await expectOneKeyPerSubject(kafka, setup.keysTopic, subjects);
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
    }
  });

  it('stops cleanly on SIGTERM mid-stream (exit code 0 within the bound), and a restart loses and doubles nothing', async () => {
    const setup = encryptorSetup({ SHREDDER_LOG_LEVEL: 'info' });
    const total = 1500;
    let child: ChildProcessor = startChildProcessor('encrypt', setup.env);
    try {
      await child.waitForLog((l) => l.msg === 'encryptor started', 60_000);
      const producing = produceSlowly(kafka, setup.input, total, 20, 150); // ~11 s of input
      await child.waitForLog((l) => l.msg === 'keys partition restored', 60_000);
      await sleep(2000 + Math.floor(Math.random() * 1000));
      const signalled = Date.now();
      child.child.kill('SIGTERM');
      const exit = await child.exited;
      expect(exit.code, child.output().slice(-2000)).to.equal(0);
      expect(Date.now() - signalled).to.be.below(SHUTDOWN_TIMEOUT_MS);
      expect(child.logs.map((l) => l.msg)).to.include.members(['encrypt stopping', 'encryptor stopped']);
      child = startChildProcessor('encrypt', setup.env);
      await producing;
      await expectExactlyOnce(kafka, setup.input, setup.output, setup.keysTopic, setup.masterKey, total);
      await expectOneKeyPerSubject(kafka, setup.keysTopic);
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
    }
  });

  it('splits partitions between two instances and survives one stopping mid-stream', async () => {
    const setup = encryptorSetup();
    const first = await startEncryptor(setup);
    const second = await startEncryptor(setup, encryptorSetup().config.stateDir); // another machine's state folder
    const total = 2000;
    const producing = produceSlowly(kafka, setup.input, total, 25, 100); // ~9 s of input
    // each partition owned by exactly one of them once the rebalance has settled
    await eventually('the partitions split between the instances', async () => {
      const owned = [...first.assignedPartitions, ...second.assignedPartitions].sort();
      return first.assignedPartitions.length > 0 && second.assignedPartitions.length > 0 && owned.join() === '0,1,2';
    });
    await sleep(1500);
    await second.stop(); // its partitions move to the first instance, their keys through the keys topic
    await producing;
    try {
      await expectExactlyOnce(kafka, setup.input, setup.output, setup.keysTopic, setup.masterKey, total);
      await expectOneKeyPerSubject(kafka, setup.keysTopic);
      await eventually('the first instance owns every partition', async () => first.assignedPartitions.join() === '0,1,2');
    } finally {
      await first.stop();
    }
  });
});
