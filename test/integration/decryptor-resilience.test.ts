// The decryptor's exactly-once output across crashes and rebalances: every encrypted record's plaintext
// appears once, in order, in the read_committed output.
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { killRepeatedly, startChildProcessor, type ChildProcessor } from '../support/child-processor.js';
import { produceSlowly } from '../support/produce.js';
import { decryptorSetup, startDecryptor, type DecryptorSetup } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor } from '../support/encryptor.js';
import { eventually, readAtLeast, readTopic, testKafka } from '../support/kafka.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The decrypted output holds each input record once, in input order per partition. */
async function expectExactlyOnce(kafka: Kafka, input: string, decrypt: DecryptorSetup, total: number) {
  const outputs = await readAtLeast(kafka, decrypt.output, total, 90_000, 1000); // duplicates fail below, with the details
  for (const [partition, records] of await readTopic(kafka, input)) {
    const out = (outputs.get(partition) ?? []).map((r) => r.value?.toString() ?? 'null');
    expect(out, `partition ${partition}`).to.deep.equal(records.map((r) => r.value!.toString()));
  }
}

describe('decryptor exactly-once', function () {
  this.timeout(240_000);
  let kafka: Kafka;
  before(() => {
    kafka = testKafka();
  });

  it('loses and duplicates nothing when the decrypt process is SIGKILLed mid-stream', async () => {
    const setup = encryptorSetup();
    const encryptor = await startEncryptor(setup);
    const decrypt = decryptorSetup(setup, { SHREDDER_LOG_LEVEL: 'info' });
    const total = 2000;
    let child: ChildProcessor = startChildProcessor('decrypt', decrypt.env);
    try {
      await child.waitForLog((l) => l.msg === 'decryptor started', 60_000);
      const producing = produceSlowly(kafka, setup.input, total, 20, 300, 41);
      child = await killRepeatedly(child, 'decrypt', decrypt.env, 2);
      await producing;
      await expectExactlyOnce(kafka, setup.input, decrypt, total);
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
      await encryptor.stop();
    }
  });

  it('two instances in one group split the partitions; one stopping mid-stream loses and doubles nothing', async () => {
    const setup = encryptorSetup();
    const encryptor = await startEncryptor(setup);
    const decrypt = decryptorSetup(setup);
    const first = await startDecryptor(decrypt);
    const second = await startDecryptor(decrypt, undefined, mkdtempSync(join(tmpdir(), 'shredder-decrypt-second-')));
    const total = 1200;
    try {
      const producing = produceSlowly(kafka, setup.input, total, 20, 200, 41);
      // each partition owned by exactly one of them once the rebalance has settled
      await eventually('the partitions split between the instances', async () => {
        const owned = [...first.assignedPartitions, ...second.assignedPartitions].sort();
        return first.assignedPartitions.length > 0 && second.assignedPartitions.length > 0 && owned.join() === '0,1,2';
      }, 60_000);
      await sleep(3000);
      await first.stop();
      await producing;
      await expectExactlyOnce(kafka, setup.input, decrypt, total);
      expect(first.stats.recordsOut + second.stats.recordsOut).to.be.at.least(total);
    } finally {
      await first.stop();
      await second.stop();
      await encryptor.stop();
    }
  });
});
