// One partition that cannot make progress never holds up the others: a partition whose task cannot
// open (its key store cannot be created, as on a full disk or an unwritable volume) is paused, the
// other partitions are encrypted as usual meanwhile, and it catches up by itself, in order and exactly
// once, once its store can be opened.
import { expect } from 'chai';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { storeLocation } from '../../src/processor/partition-task.js';
import { decryptRecord, readKeysTable } from '../support/decrypt.js';
import { encryptorSetup, startEncryptor } from '../support/encryptor.js';
import { eventually, produce, readTopic, testKafka } from '../support/kafka.js';

describe('partition isolation', function () {
  this.timeout(120_000);
  let kafka: Kafka;
  before(() => {
    kafka = testKafka();
  });

  it('encrypts the other partitions while one partition\'s task cannot open, and that one catches up once it can', async () => {
    const setup = encryptorSetup();
    const { stateDir, groupId } = setup.config;
    // partition 1's store path is taken by a regular file: its store cannot be created
    const blocked = storeLocation(stateDir, groupId, setup.keysTopic, 1);
    mkdirSync(join(stateDir, groupId), { recursive: true });
    writeFileSync(blocked, '');
    const encryptor = await startEncryptor(setup);
    try {
      const round = (n: number, partitions: number[]) =>
        partitions.flatMap((partition) => Array.from({ length: 50 }, (_, i) => ({ key: `user-${partition}-${i % 7}`, value: `event-${partition}-${n}-${i}`, partition })));
      const encryptedUpTo = (count: (partition: number) => number) => async () => {
        const read = await readTopic(kafka, setup.output);
        return read.get(0)?.length === count(0) && read.get(2)?.length === count(2) ? read : undefined;
      };
      // the first records of every partition, then more of the healthy ones while partition 1 is still
      // stuck: those must not wait for it either (a batch held for partition 1 would stop every fetch)
      const records = round(1, [0, 1, 2]);
      await produce(kafka, setup.input, records);
      await eventually('partitions 0 and 2 encrypted while 1 cannot open', encryptedUpTo(() => 50), 60_000, 500);
      for (let n = 2; n <= 4; n++) {
        const more = round(n, [0, 2]);
        records.push(...more);
        await produce(kafka, setup.input, more);
        await eventually(`round ${n} of partitions 0 and 2 encrypted while 1 cannot open`, encryptedUpTo(() => 50 * n), 30_000, 300);
      }
      const perPartition = 50;
      const outputs = await readTopic(kafka, setup.output);
      expect(outputs.get(1) ?? [], 'nothing of partition 1 yet').to.have.length(0);
      const readiness = encryptor.readiness();
      expect(readiness.ready).to.equal(false);
      expect(readiness.partitions.map((p) => p.state)).to.deep.equal(['ready', 'failing', 'ready']);
      expect(readiness.partitions[1].error).to.match(/EEXIST|ENOTDIR/);

      rmSync(blocked); // the volume is writable again
      const all = await eventually('partition 1 caught up', async () => {
        const read = await readTopic(kafka, setup.output);
        return (read.get(1)?.length ?? 0) >= perPartition ? read : undefined; // (more fail below, with the details)
      }, 60_000, 500);
      await eventually('every partition ready', async () => encryptor.readiness().ready, 30_000, 200);

      const table = await readKeysTable(kafka, setup.keysTopic);
      for (const partition of [0, 1, 2]) {
        const decrypted: string[] = [];
        for (const record of all.get(partition)!) decrypted.push(String(await decryptRecord(record, partition, table, setup.masterKey)));
        expect(decrypted, `partition ${partition}: every record once, in order`).to.deep.equal(records.filter((r) => r.partition === partition).map((r) => r.value));
      }
      expect(encryptor.stats.deadLettered).to.equal(0);
    } finally {
      await encryptor.stop();
    }
  });
});
