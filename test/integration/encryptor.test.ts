// The encryptor against a real broker: what it writes, byte for byte, and what forget does.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { CompressionTypes, type Kafka, type KafkaMessage } from 'kafkajs';
import { encryptorTopicRoles, ensureTopics } from '../../src/kafka/topics.js';
import { KeyStore } from '../../src/keys/key-store.js';
import { createLogger } from '../../src/observability/logger.js';
import { storeLocation } from '../../src/processor/partition-task.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import type { StreamProcessor } from '../../src/processor/stream-processor.js';
import { decryptRecord, liveWrappedKey, readKeysTable } from '../support/decrypt.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, createTopic, eventually, produce, readAtLeast, readTopic, testKafka, withAdmin, type TestRecord } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

const all = allRecords;

describe('encryptor', function () {
  this.timeout(120_000);
  let kafka: Kafka;
  let setup: EncryptorSetup;
  let encryptor: Encryptor | undefined;

  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    await encryptor?.stop();
    encryptor = undefined;
  });

  /**
   * Starts an encryptor and sends `sent` in one request: each input record's output has its key,
   * none of its plaintext, and decrypts to it; `alsoExpect` checks more of each pair, `prepare` runs
   * before the encryptor starts. Returns the keys table.
   */
  async function expectRoundTrip(
    sent: TestRecord[],
    alsoExpect: (out: KafkaMessage, input: KafkaMessage, what: string) => void = () => {},
    prepare: (setup: EncryptorSetup) => Promise<void> = async () => {},
  ) {
    setup = encryptorSetup();
    await prepare(setup);
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, sent);
    return expectDecryptsToInput(sent.length, alsoExpect);
  }

  /**
   * The output (at least `count` records) holds each input record in order: its key, none of its
   * plaintext, and it decrypts to it. Returns the keys table.
   */
  async function expectDecryptsToInput(count: number, alsoExpect: (out: KafkaMessage, input: KafkaMessage, what: string) => void = () => {}) {
    const inputs = await readTopic(kafka, setup.input);
    const outputs = await readAtLeast(kafka, setup.output, count);
    const table = await readKeysTable(kafka, setup.keysTopic);
    for (const [partition, records] of inputs) {
      const out = outputs.get(partition)!;
      expect(out.length, `partition ${partition}`).to.equal(records.length);
      for (let i = 0; i < records.length; i++) {
        const what = `partition ${partition} record ${i}`;
        expect(out[i].key!.toString(), what).to.equal(records[i].key!.toString());
        expect(out[i].value!.includes(records[i].value!), `${what}: no plaintext survives`).to.equal(false);
        const plaintext = await decryptRecord(out[i], partition, table, setup.masterKey);
        expect(plaintext !== 'shredded' && Buffer.compare(plaintext, records[i].value!), what).to.equal(0);
        alsoExpect(out[i], records[i], what);
      }
    }
    return table;
  }

  it('encrypts every record so it decrypts to exactly the input, keeping key, partition, timestamp and headers', async () => {
    const sent = Array.from({ length: 60 }, (_, i) => ({
      key: `user-${i % 7}`,
      value: `{"event":${i},"email":"person${i % 7}@example.org"}`,
      headers: { 'trace-id': `t-${i}` },
    }));
    const table = await expectRoundTrip(sent, (out, input, what) => {
      expect(out.timestamp, what).to.equal(input.timestamp);
      expect(out.headers!['trace-id']!.toString(), what).to.equal(input.headers!['trace-id']!.toString());
      expect(out.value!.length, what).to.equal(input.value!.length + 38);
      expect(out.value!.includes(Buffer.from('@example.org')), `${what}: no personal field survives`).to.equal(false);
    });
    expect(table.size).to.equal(7); // one key per subject (each subject's records share a partition)
    expect(encryptor!.stats.keysCreated).to.equal(7);
  });

  it('encrypts batches large enough for the sealing thread so they decrypt to exactly the input', async () => {
    // one request: each partition's batch holds about 1000 records (some 300 KB), sealed off the main thread
    const table = await expectRoundTrip(Array.from({ length: 3000 }, (_, i) => ({ key: `bulk-${i % 50}`, value: randomBytes(300) })));
    // (with one CPU the encryptor has no sealing thread and seals everything in-thread)
    if (availableParallelism() >= 2) expect(encryptor!.stats.sealedOffThread, 'records sealed on the sealing thread').to.be.greaterThan(1000);
    expect(table.size).to.equal(50);
  });

  it('seals a backlog of subjects it has keys for from the fetched bytes, compressed or not, so it decrypts to exactly the input', async () => {
    setup = encryptorSetup();
    encryptor = await startEncryptor(setup);
    const records = (count: number, from: number) => Array.from({ length: count }, (_, i) => ({ key: `backlog-${(from + i) % 40}`, value: randomBytes(300) }));
    await produce(kafka, setup.input, records(200, 0)); // (every subject's key first)
    await readAtLeast(kafka, setup.output, 200);
    // then large batches of those subjects: one request plain, one gzip (each record batch
    // decompressed into a buffer of its own, where its records' keys and values lie)
    await produce(kafka, setup.input, records(3000, 200));
    await readAtLeast(kafka, setup.output, 3200);
    await produce(kafka, setup.input, records(3000, 3200), CompressionTypes.GZIP);
    const table = await expectDecryptsToInput(6200);
    expect(table.size).to.equal(40);
    // every record of the backlog (with one CPU the encryptor has no sealing thread, and so no sealing from the fetched bytes)
    if (availableParallelism() >= 2) expect(encryptor.stats.sealedFromFetch, 'records sealed from the fetched bytes').to.equal(6000);
    expect(encryptor.stats.keysCreated).to.equal(40);
  });

  it('keeps at most SHREDDER_KEY_CACHE_SUBJECTS subjects a partition in memory: subjects past it are read back from the store, one key each, and decrypt to the input', async () => {
    setup = encryptorSetup({ SHREDDER_KEY_CACHE_SUBJECTS: '5' });
    encryptor = await startEncryptor(setup);
    const tasks = await (encryptor as unknown as { processor: StreamProcessor }).processor.openTasks();
    expect(tasks.map((task) => task.keys.cacheCapacity)).to.deep.equal(tasks.map(() => 5));
    // 60 subjects, about 20 a partition: large batches of new subjects, then two rounds of them again
    // once each partition's cache has let most of them go
    const records = (count: number, from: number) => Array.from({ length: count }, (_, i) => ({ key: `cached-${(from + i) % 60}`, value: randomBytes(200) }));
    await produce(kafka, setup.input, records(3000, 0));
    await readAtLeast(kafka, setup.output, 3000);
    await produce(kafka, setup.input, records(120, 7));
    await readAtLeast(kafka, setup.output, 3120);
    await produce(kafka, setup.input, records(3000, 11));
    const table = await expectDecryptsToInput(6120);
    expect(table.size).to.equal(60);
    expect(encryptor.stats.keysCreated).to.equal(60);
  });

  it('writes the contract wire formats: decryptable with node:crypto alone, given the master key', async () => {
    setup = encryptorSetup({ SHREDDER_ALGORITHM: 'chacha20-poly1305' });
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [{ key: 'subject-42', value: 'the plaintext', partition: 1 }]);
    const [record] = (await readAtLeast(kafka, setup.output, 1)).get(1)!;
    const [keyRecord] = (await readTopic(kafka, setup.keysTopic)).get(1)!;
    const subject = Buffer.from('subject-42');

    const wrapped = keyRecord.value!;
    expect(keyRecord.key!.equals(subject)).to.equal(true);
    expect(wrapped.length).to.equal(74);
    expect(wrapped[0]).to.equal(0x01); // version
    expect(wrapped[1]).to.equal(0x01); // chacha20-poly1305
    expect(wrapped.readUInt32BE(10)).to.equal(1); // master key id
    const unwrap = createDecipheriv('aes-256-gcm', setup.masterKey, wrapped.subarray(14, 26), { authTagLength: 16 });
    unwrap.setAAD(Buffer.concat([wrapped.subarray(0, 26), subject]));
    unwrap.setAuthTag(wrapped.subarray(58, 74));
    const dataKey = Buffer.concat([unwrap.update(wrapped.subarray(26, 58)), unwrap.final()]);
    expect(dataKey.length).to.equal(32);

    const value = record.value!;
    expect(value[0]).to.equal(0x01);
    expect(value[1]).to.equal(0x01);
    expect(value.subarray(2, 10).equals(wrapped.subarray(2, 10)), 'key id names the subject key').to.equal(true);
    const open = createDecipheriv('chacha20-poly1305', dataKey, value.subarray(10, 22), { authTagLength: 16 });
    open.setAAD(Buffer.concat([value.subarray(0, 22), subject]), { plaintextLength: value.length - 38 });
    open.setAuthTag(value.subarray(value.length - 16));
    const plaintext = Buffer.concat([open.update(value.subarray(22, value.length - 16)), open.final()]);
    expect(plaintext.toString()).to.equal('the plaintext');
  });

  it('encrypts with AES-256-GCM when configured (algorithm byte 0x02)', async () => {
    setup = encryptorSetup({ SHREDDER_ALGORITHM: 'aes-256-gcm' });
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [{ key: 'subject-7', value: 'gcm plaintext', partition: 0 }]);
    const [record] = (await readAtLeast(kafka, setup.output, 1)).get(0)!;
    expect(record.value![1]).to.equal(0x02);
    const table = await readKeysTable(kafka, setup.keysTopic);
    expect((await decryptRecord(record, 0, table, setup.masterKey)).toString()).to.equal('gcm plaintext');
  });

  it('forgets a subject in order with its data: tombstone, key gone from the store, old records unreadable, a new key afterwards', async () => {
    setup = encryptorSetup();
    encryptor = await startEncryptor(setup);
    // default partitioner for records and for the forget request alike: a subject lives on one partition
    await produce(kafka, setup.input, [
      { key: 'alice', value: 'alice-1' },
      { key: 'bob', value: 'bob-1' },
      { key: 'alice', value: 'alice-2' },
    ]);
    await readAtLeast(kafka, setup.output, 3);
    const before = await readKeysTable(kafka, setup.keysTopic);
    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    await produce(kafka, setup.input, [{ key: 'alice', value: 'alice-3' }]);

    const outputs = await readAtLeast(kafka, setup.output, 5);
    const [alicePartition, out] = [...outputs].find(([, records]) => records.some((m) => m.key!.toString() === 'alice'))!;
    const alice = out.filter((m) => m.key!.toString() === 'alice');
    expect(alice.map((m) => m.value === null)).to.deep.equal([false, false, true, false]); // the forget marker in order
    expect(alice[2].headers!['shredder.command']!.toString()).to.equal('forget');

    const keyRecords = (await readTopic(kafka, setup.keysTopic)).get(alicePartition)!.filter((m) => m.key!.toString() === 'alice');
    expect(keyRecords.map((m) => m.value === null)).to.deep.equal([false, true, false]); // key, tombstone, new key
    const after = await readKeysTable(kafka, setup.keysTopic);
    expect(await decryptRecord(alice[0], alicePartition, after, setup.masterKey)).to.equal('shredded');
    expect(await decryptRecord(alice[1], alicePartition, after, setup.masterKey)).to.equal('shredded');
    expect((await decryptRecord(alice[3], alicePartition, after, setup.masterKey)).toString()).to.equal('alice-3');
    expect(Buffer.compare(alice[3].value!.subarray(2, 10), alice[0].value!.subarray(2, 10))).to.not.equal(0); // new key id
    expect(liveWrappedKey(after, alicePartition, 'alice')!.equals(liveWrappedKey(before, alicePartition, 'alice')!)).to.equal(false);
    const [bobPartition, bobRecords] = [...outputs].find(([, records]) => records.some((m) => m.key!.toString() === 'bob'))!;
    const bob = bobRecords.find((m) => m.key!.toString() === 'bob')!;
    expect((await decryptRecord(bob, bobPartition, after, setup.masterKey)).toString()).to.equal('bob-1');

    // the store's entry for alice now holds only the new key
    await encryptor.stop();
    encryptor = undefined;
    const store = await KeyStore.open(storeLocation(setup.config.stateDir, setup.config.groupId, setup.keysTopic, alicePartition));
    const [entry] = await store.get([Buffer.from('alice')]);
    await store.close();
    expect(Buffer.from(entry!.wrapped!).equals(liveWrappedKey(after, alicePartition, 'alice')!)).to.equal(true);
    expect(entry!.forgottenAt).to.be.a('number');
  });

  it('erases a forgotten key from the keys topic within the erasure deadline, even when nothing else is written', async function () {
    this.timeout(90_000);
    // deadline 4 s: segment.ms = max.compaction.lag.ms = 2 s; the local broker's cleaner wakes every second
    setup = encryptorSetup({ SHREDDER_ERASURE_DEADLINE_MS: '4000' });
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [{ key: 'frank', value: 'frank-1' }, { key: 'grace', value: 'grace-1' }]);
    await readAtLeast(kafka, setup.output, 2);
    await requestForget(kafka, [setup.input], Buffer.from('frank'));
    await readAtLeast(kafka, setup.output, 3);
    const forgottenAt = Date.now();
    // from here on nothing is produced: only the encryptor's segment-roll marker can roll the segment
    const remaining = await eventually('the old wrapped key of frank to be compacted away', async () => {
      const records = all(await readTopic(kafka, setup.keysTopic));
      const frankKeys = records.filter((r) => r.key!.toString() === 'frank' && r.value !== null);
      return frankKeys.length === 0 ? records : undefined;
    }, 60_000, 1000);
    const erasedAfterMs = Date.now() - forgottenAt;
    expect(remaining.some((r) => r.key!.toString() === 'grace' && r.value !== null), 'other subjects keep their keys').to.equal(true);
    expect(erasedAfterMs).to.be.lessThan(60_000);
  });

  it('makes records produced before a forget unreadable even when their route is processed after it', async () => {
    const second = { from: `${'late'}-${Date.now()}`, to: `late-out-${Date.now()}` };
    setup = encryptorSetup();
    const routes = `${setup.env.SHREDDER_ROUTES},${second.from}->${second.to}`;
    setup = encryptorSetup({ ...setup.env, SHREDDER_ROUTES: routes });
    await createTopic(kafka, { topic: second.from, numPartitions: 3 });
    // carol's event on the second route is produced before the forget, but only reaches the
    // encryptor after the forget on the first route has been processed
    const earlier = Date.now() - 60_000;
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [{ key: 'carol', value: 'carol-1', partition: 2 }]);
    await readAtLeast(kafka, setup.output, 1);
    const forgetProducer = kafka.producer();
    await forgetProducer.connect();
    await forgetProducer.send({ topic: setup.input, messages: [{ key: 'carol', value: null, partition: 2, headers: { 'shredder.command': 'forget' } }] });
    await forgetProducer.disconnect();
    await readAtLeast(kafka, setup.output, 2);
    await produce(kafka, second.from, [{ key: 'carol', value: 'carol-late', partition: 2, timestamp: String(earlier) } as never]);
    const late = (await readAtLeast(kafka, second.to, 1)).get(2)!;
    const table = await readKeysTable(kafka, setup.keysTopic);
    expect(late[0].value!.includes(Buffer.from('carol-late'))).to.equal(false);
    expect(await decryptRecord(late[0], 2, table, setup.masterKey)).to.equal('shredded');
    expect(encryptor.stats.bornShredded).to.equal(1);
  });

  it('dead-letters records without a subject, keeps tombstones, and goes on', async () => {
    setup = encryptorSetup();
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [
      { key: null, value: 'orphan', partition: 1 },
      { key: 'dave', value: null, partition: 1 },
      { key: 'dave', value: 'dave-1', partition: 1 },
    ]);
    const out = (await readAtLeast(kafka, setup.output, 2)).get(1)!;
    expect(out.map((m) => [m.key!.toString(), m.value === null])).to.deep.equal([['dave', true], ['dave', false]]);
    const dead = (await eventually('a dead letter', async () => {
      const records = all(await readTopic(kafka, setup.dlqTopic));
      return records.length > 0 ? records : undefined;
    }));
    expect(dead).to.have.length(1);
    expect(dead[0].value!.toString()).to.equal('orphan');
    expect(dead[0].headers!['shredder.error']!.toString()).to.match(/no subject/);
    expect(dead[0].headers!['shredder.source']!.toString()).to.equal(`${setup.input}/1/0`);
    // the input offsets moved past the dead letter: committed offset = end of the partition
    const committed = await withAdmin(kafka, (admin) => admin.fetchOffsets({ groupId: setup.config.groupId, topics: [setup.input] }));
    const p1 = committed[0].partitions.find((p) => p.partition === 1)!;
    expect(Number(p1.offset)).to.be.at.least(3);
  });

  it('dead-letters a record that would be too large for the output once encrypted, and goes on', async () => {
    setup = encryptorSetup();
    encryptor = await startEncryptor(setup);
    const big = Buffer.alloc(1_048_588 - 100, 0x61); // fits the input topic; 38 bytes more do not fit the output
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: setup.input, messages: [{ key: 'heidi', value: big, partition: 0 }] });
    await producer.send({ topic: setup.input, messages: [{ key: 'heidi', value: 'small', partition: 0 }] });
    await producer.disconnect();
    const out = (await readAtLeast(kafka, setup.output, 1)).get(0)!;
    expect(out).to.have.length(1);
    const table = await readKeysTable(kafka, setup.keysTopic);
    expect((await decryptRecord(out[0], 0, table, setup.masterKey)).toString()).to.equal('small');
    const dead = all(await readTopic(kafka, setup.dlqTopic));
    expect(dead).to.have.length(1);
    expect(dead[0].value!.length).to.equal(big.length);
    expect(dead[0].headers!['shredder.error']!.toString()).to.match(/too large once encrypted/);
  });

  it('cuts its transactions\' requests to an output topic\'s smaller max.message.bytes, so that topic takes every record', async () => {
    // some 200 KB of output a partition, in batches the broker would refuse whole at 64 KiB
    const smallBatches = async ({ output }: EncryptorSetup) =>
      createTopic(kafka, { topic: output, numPartitions: 3, configEntries: [{ name: 'max.message.bytes', value: String(64 * 1024) }] });
    const table = await expectRoundTrip(Array.from({ length: 2000 }, (_, i) => ({ key: `small-${i % 20}`, value: randomBytes(300) })), undefined, smallBatches);
    expect(table.size).to.equal(20);
    expect(all(await readTopic(kafka, setup.dlqTopic))).to.have.length(0);
  });

  it('dead-letters the records of a subject whose key cannot be unwrapped (another master key), and goes on', async () => {
    setup = encryptorSetup();
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [{ key: 'ivan', value: 'ivan-1', partition: 0 }]);
    await readAtLeast(kafka, setup.output, 1);
    await encryptor.stop();
    // the same deployment restarted with another master key (id 2) on a fresh machine
    const rotated = encryptorSetup({ ...setup.env, SHREDDER_MASTER_KEY: Buffer.alloc(32, 9).toString('base64'), SHREDDER_MASTER_KEY_ID: '2' });
    encryptor = await startEncryptor(rotated, encryptorSetup().config.stateDir);
    await produce(kafka, setup.input, [{ key: 'ivan', value: 'ivan-2', partition: 0 }, { key: 'judy', value: 'judy-1', partition: 0 }]);
    const out = (await readAtLeast(kafka, setup.output, 2)).get(0)!;
    expect(out.map((m) => m.key!.toString())).to.deep.equal(['ivan', 'judy']);
    const dead = await eventually('a dead letter', async () => {
      const records = all(await readTopic(kafka, setup.dlqTopic));
      return records.length > 0 ? records : undefined;
    });
    expect(dead.map((m) => m.value!.toString())).to.deep.equal(['ivan-2']);
    expect(dead[0].headers!['shredder.error']!.toString()).to.equal("key unavailable: data key wrapped with master key id 1, which is not in this process's keyring (ids 2)");
    expect(dead[0].headers!['shredder.error.class']!.toString()).to.equal('KeyUnavailable');
    // ivan still has exactly one key: the processor did not replace the one it could not read
    const ivanKeys = (await readTopic(kafka, setup.keysTopic)).get(0)!.filter((m) => m.key!.toString() === 'ivan');
    expect(ivanKeys).to.have.length(1);
  });

  it('restores keys from the checkpoint on restart, reading only the tail of the keys topic', async () => {
    setup = encryptorSetup();
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, Array.from({ length: 40 }, (_, i) => ({ key: `s-${i}`, value: `v-${i}`, partition: 0 })));
    await readAtLeast(kafka, setup.output, 40);
    await encryptor.stop();
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [{ key: 's-1', value: 'again', partition: 0 }, { key: 'new-subject', value: 'x', partition: 0 }]);
    await readAtLeast(kafka, setup.output, 42);
    const restore = encryptor.restores.find((r) => r.partition === 0)!;
    expect(restore.fullRestore).to.equal(false);
    expect(restore.fromOffset).to.be.at.least(40); // 40 key records were already in the store
    expect(restore.records).to.be.lessThan(40);
    // and the restored key is the one in use: s-1 was not given a second key
    const keys = (await readTopic(kafka, setup.keysTopic)).get(0)!;
    expect(keys.filter((k) => k.key!.toString() === 's-1')).to.have.length(1);
    expect(encryptor.stats.keysCreated).to.equal(1);
  });

  it('restores every key from the keys topic when the local store is gone', async () => {
    setup = encryptorSetup();
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, Array.from({ length: 10 }, (_, i) => ({ key: `s-${i}`, value: `v-${i}`, partition: 2 })));
    await readAtLeast(kafka, setup.output, 10);
    await encryptor.stop();
    const freshState = encryptorSetup().config.stateDir; // an empty folder: a new machine
    encryptor = await startEncryptor(setup, freshState);
    await produce(kafka, setup.input, [{ key: 's-3', value: 'again', partition: 2 }]);
    await readAtLeast(kafka, setup.output, 11);
    const restore = encryptor.restores.find((r) => r.partition === 2)!;
    expect(restore).to.include({ fromOffset: 0, records: 10 });
    expect(encryptor.stats.keysCreated).to.equal(0);
  });

  it('refuses to start when partition counts differ or the keys topic is not compacted, naming the topics', async () => {
    setup = encryptorSetup();
    await createTopic(kafka, { topic: setup.input, numPartitions: 2 });
    await createTopic(kafka, { topic: setup.keysTopic, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] });
    let error = await startEncryptor(setup).then(() => undefined, (err: Error) => err);
    expect(error?.message).to.contain(setup.input).and.contain(setup.keysTopic).and.match(/partition counts differ/);

    setup = encryptorSetup();
    await createTopic(kafka, { topic: setup.keysTopic, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] });
    error = await startEncryptor(setup).then(() => undefined, (err: Error) => err);
    expect(error?.message).to.contain(setup.keysTopic).and.match(/not compacted/);
  });

  it('`kafka-shredder forget <subject>` writes a forget request to every route\'s input topic', async () => {
    setup = encryptorSetup();
    const other = `${setup.input}-second`;
    await createTopic(kafka, { topic: setup.input, numPartitions: 3 });
    await createTopic(kafka, { topic: other, numPartitions: 3 });
    const result = spawnSync(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'forget', 'erin'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, KAFKA_BROKERS: setup.env.KAFKA_BROKERS, SHREDDER_ROUTES: `${setup.input}->x,${other}->y`, SHREDDER_LOG_LEVEL: 'silent' },
    });
    expect(result.status, result.stderr).to.equal(0);
    for (const topic of [setup.input, other]) {
      const requests = all(await readTopic(kafka, topic));
      expect(requests, topic).to.have.length(1);
      expect(requests[0].key!.toString()).to.equal('erin');
      expect(requests[0].value).to.equal(null);
      expect(requests[0].headers!['shredder.command']!.toString()).to.equal('forget');
    }
    // every copy of one request carries the request's one timestamp
    const stamps = await Promise.all([setup.input, other].map(async (topic) => all(await readTopic(kafka, topic))[0].timestamp));
    expect(new Set(stamps).size).to.equal(1);
  });

  it('`kafka-shredder forget` with a missing input topic names the topic and SHREDDER_ROUTES, writes nothing, and exits 2', async () => {
    setup = encryptorSetup();
    await createTopic(kafka, { topic: setup.input, numPartitions: 3 });
    const missing = `${setup.input}-missing`;
    const result = spawnSync(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'forget', 'erin'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, KAFKA_BROKERS: setup.env.KAFKA_BROKERS, SHREDDER_ROUTES: `${setup.input}->x,${missing}->y`, SHREDDER_LOG_LEVEL: 'silent' },
      timeout: 60_000,
    });
    expect(result.status, result.stderr).to.equal(2);
    expect(result.stderr.trim().split('\n')).to.have.length(1);
    expect(result.stderr).to.contain(`"${missing}" does not exist`).and.contain('SHREDDER_ROUTES');
    expect(result.stderr).not.to.contain(`"${setup.input}"`);
    expect(all(await readTopic(kafka, setup.input))).to.have.length(0); // not even to the topic that exists
  });

  it('counts a forget carried by several routes as one forgotten subject, and one request per route', async () => {
    setup = encryptorSetup();
    const second = { from: `${setup.input}-b`, to: `${setup.output}-b` };
    const twoRoutes = { ...setup, config: { ...setup.config, routes: [...setup.config.routes, second] } };
    encryptor = await startEncryptor(twoRoutes);
    await produce(kafka, setup.input, [{ key: 'frank', value: 'frank-a' }]);
    await produce(kafka, second.from, [{ key: 'frank', value: 'frank-b' }]);
    await readAtLeast(kafka, second.to, 1);
    await readAtLeast(kafka, setup.output, 1);
    await requestForget(kafka, [setup.input, second.from], Buffer.from('frank'));
    const running = encryptor;
    await eventually('both forget requests carried out', async () => running.stats.forgetRequests === 2);
    expect(running.stats.subjectsForgotten).to.equal(1);
    const text = await running.metrics.text();
    expect(text).to.match(/^shredder_subjects_forgotten_total\{processor="encrypt"\} 1$/m);
    for (const route of [`${setup.input}->${setup.output}`, `${second.from}->${second.to}`]) {
      expect(text.split('\n').find((l) => l.startsWith('shredder_forget_requests_total{') && l.includes(`route="${route}"`)), route).to.match(/ 1$/);
    }
  });

  it('creates missing topics with the contract settings', async () => {
    setup = encryptorSetup({ SHREDDER_ERASURE_DEADLINE_MS: '3600000', SHREDDER_PLAINTEXT_RETENTION_MS: '7200000' });
    encryptor = await startEncryptor(setup);
    const configs = await withAdmin(kafka, (admin) =>
      admin.describeConfigs({ includeSynonyms: false, resources: [setup.input, setup.output, setup.keysTopic].map((name) => ({ type: 2, name })) }),
    );
    const get = (topic: string, name: string) =>
      configs.resources.find((r) => r.resourceName === topic)!.configEntries.find((e) => e.configName === name)!.configValue;
    expect(get(setup.input, 'retention.ms')).to.equal('7200000');
    expect(get(setup.output, 'retention.ms')).to.equal('-1');
    expect(get(setup.keysTopic, 'cleanup.policy')).to.equal('compact');
    expect(Number(get(setup.keysTopic, 'max.compaction.lag.ms')) + Number(get(setup.keysTopic, 'segment.ms'))).to.be.at.most(3600000);
  });

  it('creates the topics when several processors start at once, each ready with a leader for every partition', async () => {
    // Instances of one deployment start together and race to create the same topics: the losers get
    // TOPIC_ALREADY_EXISTS, and a KRaft broker may not know a topic it just created yet.
    setup = encryptorSetup();
    const layouts = await Promise.all(Array.from({ length: 4 }, () =>
      withAdmin(kafka, (admin) => ensureTopics(admin, setup.config, encryptorTopicRoles(setup.config.routes), createLogger('silent')))));
    expect(layouts.map((l) => l.partitions)).to.deep.equal([3, 3, 3, 3]);
    const topics = [setup.input, setup.output, setup.keysTopic, setup.dlqTopic];
    const { topics: found } = await withAdmin(kafka, (admin) => admin.fetchTopicMetadata({ topics }));
    expect(found.map((t) => t.name).sort()).to.deep.equal([...topics].sort());
    for (const topic of found) expect(topic.partitions.every((p) => p.leader >= 0), topic.name).to.equal(true);
  });
});
