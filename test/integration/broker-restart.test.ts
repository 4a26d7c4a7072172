// A broker that crashes under load (SIGKILL, then a restart on the same data): the encryptor and the
// decryptor, both real processes, ride it out by themselves: neither exits, nothing is dead-lettered,
// and every record is encrypted and decrypted exactly once, in order.
import { expect } from 'chai';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { LocalKafkaBroker } from '../../src/dev/local-broker/index.js';
import { startChildProcessor, type ChildProcessor } from '../support/child-processor.js';
import { decryptRecord, readKeysTable } from '../support/decrypt.js';
import { decryptorSetup } from '../support/decryptor.js';
import { encryptorSetup } from '../support/encryptor.js';
import { eventually, readTopic } from '../support/kafka.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Produces `event-<n>` records in chunks, each chunk sent until the broker takes it (it may be down meanwhile). */
async function produceThroughOutage(kafka: Kafka, topic: string, total: number, chunk: number, pauseMs: number): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let sent = 0; sent < total; sent += chunk) {
      const messages = Array.from({ length: Math.min(chunk, total - sent) }, (_, i) => ({ key: `user-${(sent + i) % 37}`, value: `event-${sent + i}` }));
      for (;;) {
        try {
          await producer.send({ topic, messages });
          break;
        } catch {
          await sleep(500); // (the broker is down: a resend may duplicate the chunk in the input, which the checks read back)
        }
      }
      await sleep(pauseMs);
    }
  } finally {
    await producer.disconnect();
  }
}

const values = (records: KafkaMessage[]) => records.map((r) => r.value?.toString() ?? null);

describe('a broker crash under load', function () {
  this.timeout(300_000);
  let broker: LocalKafkaBroker;
  let kafka: Kafka;
  before(async function () {
    this.timeout(120_000);
    broker = new LocalKafkaBroker();
    await broker.start();
    kafka = new Kafka({ clientId: 'broker-restart-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  });
  after(async () => {
    await broker?.stop();
  });

  it('the encryptor and the decryptor ride it out: no exit, no dead letter, every record once and in order', async () => {
    const brokers = { KAFKA_BROKERS: broker.brokers.join(','), SHREDDER_LOG_LEVEL: 'info' };
    const encrypt = encryptorSetup(brokers);
    const decrypt = decryptorSetup(encrypt, brokers);
    const children: ChildProcessor[] = [startChildProcessor('encrypt', encrypt.env), startChildProcessor('decrypt', decrypt.env)];
    try {
      await children[0].waitForLog((l) => l.msg === 'encryptor started', 60_000);
      await children[1].waitForLog((l) => l.msg === 'decryptor started', 60_000);
      const total = 1200;
      const producing = produceThroughOutage(kafka, encrypt.input, total, 20, 400);
      await sleep(8000);
      await broker.crashAndRestart();
      await producing;

      const inputs = await readTopic(kafka, encrypt.input);
      const produced = [...inputs.values()].reduce((n, records) => n + records.length, 0);
      expect(produced).to.be.at.least(total);
      const decrypted = await eventually('every record decrypted', async () => {
        const read = await readTopic(kafka, decrypt.output);
        return [...read.values()].reduce((n, records) => n + records.length, 0) >= produced ? read : undefined;
      }, 120_000, 1000);
      const encrypted = await readTopic(kafka, encrypt.output);
      const table = await readKeysTable(kafka, encrypt.keysTopic);
      for (const [partition, records] of inputs) {
        const opened: string[] = [];
        for (const record of encrypted.get(partition) ?? []) opened.push(String(await decryptRecord(record, partition, table, encrypt.masterKey)));
        expect(opened, `encrypted partition ${partition}: each input record once, in order`).to.deep.equal(values(records));
        expect(values(decrypted.get(partition) ?? []), `decrypted partition ${partition}`).to.deep.equal(values(records));
      }
      for (const dlq of new Set([encrypt.dlqTopic, decrypt.config.dlqTopic])) {
        const dead = [...(await readTopic(kafka, dlq).catch(() => new Map<number, KafkaMessage[]>())).values()].flat();
        expect(dead.map((d) => d.headers?.['shredder.error']?.toString()), `${dlq}: nothing dead-lettered`).to.deep.equal([]);
      }
      for (const child of children) {
        expect(child.child.exitCode, `${child.child.spawnargs.slice(-1)}: still running`).to.equal(null);
        expect(child.output(), 'no raw stack trace: every line is a JSON log line').not.to.match(/^\s+at .+\(.+:\d+:\d+\)$/m);
      }
    } finally {
      for (const child of children) child.child.kill('SIGTERM');
      await Promise.all(children.map((c) => c.exited));
    }
  });
});
