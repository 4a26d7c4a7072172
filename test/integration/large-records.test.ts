// Large records against the real broker (issue 27): an input topic that takes 16 MiB, records of 11
// and 12 MiB, and output and dead letter topics that take less. No record stalls its partition: each
// is encrypted (decrypted) or dead-lettered, and the partition's later records are processed. And the layout problems of a
// deployment are reported together, naming their variables, with exit code 2.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import type { Decryptor } from '../../src/decryptor/decryptor.js';
import { DLQ_HEADER_ROOM_BYTES, OUTPUT_ROOM_BYTES } from '../../src/kafka/topics.js';
import { startChildProcessor } from '../support/child-processor.js';
import { decryptRecord, readKeysTable } from '../support/decrypt.js';
import { decryptorSetup, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { createTopic, readAtLeast, readTopic, testKafka, uniqueName, withAdmin } from '../support/kafka.js';

const MiB = 1024 * 1024;
const text = (m: KafkaMessage, header: string) => m.headers?.[header]?.toString();

/** Sends each record in its own request, in order, to partition 0. */
async function produceInOrder(kafka: Kafka, topic: string, records: { key: string; value: Buffer }[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (const { key, value } of records) await producer.send({ topic, messages: [{ key, value, partition: 0 }] });
  } finally {
    await producer.disconnect();
  }
}

async function maxMessageBytes(kafka: Kafka, topic: string): Promise<number> {
  return withAdmin(kafka, async (admin) => {
    const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic }] });
    return Number(resources[0].configEntries.find((e) => e.configName === 'max.message.bytes')!.configValue);
  });
}

const limit = (bytes: number) => [{ name: 'max.message.bytes', value: String(bytes) }];

describe('large records', function () {
  this.timeout(180_000);
  let kafka: Kafka;
  let encryptor: Encryptor | undefined;
  let decryptor: Decryptor | undefined;
  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    await decryptor?.stop();
    await encryptor?.stop();
    encryptor = undefined;
    decryptor = undefined;
  });

  /** The input's records of partition 0 once the output and the dead letter topic hold `outputs` and `deadLetters` of them. */
  async function processed(setup: EncryptorSetup, outputs: number, deadLetters: number): Promise<{ out: KafkaMessage[]; dead: KafkaMessage[] }> {
    const out = (await readAtLeast(kafka, setup.output, outputs, 120_000)).get(0) ?? [];
    const dead = deadLetters > 0 ? [...(await readAtLeast(kafka, setup.dlqTopic, deadLetters, 120_000)).values()].flat() : [];
    return { out, dead };
  }

  it('encrypts an 11 MB record of a 16 MiB input, dead-letters one just over the output\'s limit whole, and goes on', async () => {
    const setup = encryptorSetup();
    await createTopic(kafka, { topic: setup.input, numPartitions: 3, configEntries: limit(16 * MiB) });
    await createTopic(kafka, { topic: setup.output, numPartitions: 3, configEntries: [...limit(12 * MiB), { name: 'retention.ms', value: '-1' }] });
    encryptor = await startEncryptor(setup);
    const eleven = randomBytes(11 * 1000 * 1000);
    const justOver = randomBytes(12 * MiB - 100); // fits the input; with its envelope, not the output
    await produceInOrder(kafka, setup.input, [
      { key: 'olga', value: Buffer.from('before') },
      { key: 'olga', value: eleven },
      { key: 'olga', value: justOver },
      { key: 'olga', value: Buffer.from('after') },
    ]);
    const { out, dead } = await processed(setup, 3, 1);
    expect(out).to.have.length(3);
    const table = await readKeysTable(kafka, setup.keysTopic);
    const plain = await Promise.all(out.map((m) => decryptRecord(m, 0, table, setup.masterKey)));
    expect(plain.map((p) => (p as Buffer).length)).to.deep.equal([6, eleven.length, 5]);
    expect((plain[1] as Buffer).equals(eleven)).to.equal(true);
    expect((plain[2] as Buffer).toString()).to.equal('after');
    expect(dead).to.have.length(1);
    expect(dead[0].value!.equals(justOver)).to.equal(true);
    expect(text(dead[0], 'shredder.error')).to.match(/^record too large once encrypted: \d+ bytes, the output topic takes 12582912 \(max.message.bytes\)$/);
    expect(text(dead[0], 'shredder.error.class')).to.equal('RecordTooLarge');
    expect(text(dead[0], 'shredder.source')).to.equal(`${setup.input}/0/2`);
    expect(text(dead[0], 'shredder.error.value-dropped')).to.equal(undefined);
  });

  it('encrypts an 11 MB record into the output it creates, and dead-letters one whole that an existing output of the broker\'s default cannot take', async () => {
    const second = { input: uniqueName('plain'), output: uniqueName('encrypted') };
    const first = { input: uniqueName('plain'), output: uniqueName('encrypted') };
    const setup = encryptorSetup({ SHREDDER_ROUTES: `${first.input}->${first.output},${second.input}->${second.output}` });
    for (const { input } of [first, second]) await createTopic(kafka, { topic: input, numPartitions: 3, configEntries: limit(16 * MiB) });
    await createTopic(kafka, { topic: second.output, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '-1' }] }); // the broker's default limit
    encryptor = await startEncryptor(setup);
    // the topics it created take what the inputs take
    expect(await maxMessageBytes(kafka, first.output)).to.equal(16 * MiB + OUTPUT_ROOM_BYTES);
    expect(await maxMessageBytes(kafka, setup.dlqTopic)).to.equal(16 * MiB + DLQ_HEADER_ROOM_BYTES);
    const eleven = randomBytes(11 * 1000 * 1000);
    for (const { input } of [first, second]) await produceInOrder(kafka, input, [{ key: 'pia', value: eleven }, { key: 'pia', value: Buffer.from('after') }]);
    const table = async () => readKeysTable(kafka, setup.keysTopic);
    const encrypted = (await readAtLeast(kafka, first.output, 2, 120_000)).get(0)!;
    expect(encrypted).to.have.length(2);
    expect((await decryptRecord(encrypted[0], 0, await table(), setup.masterKey) as Buffer).equals(eleven)).to.equal(true);
    const rest = (await readAtLeast(kafka, second.output, 1, 120_000)).get(0)!;
    expect(rest).to.have.length(1);
    expect((await decryptRecord(rest[0], 0, await table(), setup.masterKey)).toString()).to.equal('after');
    const dead = [...(await readAtLeast(kafka, setup.dlqTopic, 1, 120_000)).values()].flat();
    expect(dead).to.have.length(1);
    expect(dead[0].value!.equals(eleven)).to.equal(true);
    expect(text(dead[0], 'shredder.error.class')).to.equal('RecordTooLarge');
    expect(text(dead[0], 'shredder.source')).to.equal(`${second.input}/0/0`);
    const committed = await withAdmin(kafka, (admin) => admin.fetchOffsets({ groupId: setup.config.groupId, topics: [first.input, second.input] }));
    expect(committed.map((t) => t.partitions.find((p) => p.partition === 0)!.offset)).to.deep.equal(['2', '2']);

    // the decryptor: into an output it creates (taking what its input takes), the 11 MB plaintext; into
    // an existing one of the broker's default, a dead letter, and the partition goes on
    const created = decryptorSetup(setup, { SHREDDER_ROUTES: `${first.output}->${uniqueName('decrypted')}` });
    decryptor = await startDecryptor(created);
    const plain = (await readAtLeast(kafka, created.output, 2, 120_000)).get(0)!;
    expect(plain.map((m) => m.value!.length)).to.deep.equal([eleven.length, 5]);
    expect(plain[0].value!.equals(eleven)).to.equal(true);
    await decryptor.stop();
    const existing = decryptorSetup(setup, { SHREDDER_ROUTES: `${first.output}->${uniqueName('decrypted')}` });
    await createTopic(kafka, { topic: existing.output, numPartitions: 3 });
    decryptor = await startDecryptor(existing);
    const after = (await readAtLeast(kafka, existing.output, 1, 120_000)).get(0)!;
    expect(after.map((m) => m.value!.toString())).to.deep.equal(['after']);
    const decryptDead = [...(await readAtLeast(kafka, setup.dlqTopic, 2, 120_000)).values()].flat().filter((m) => text(m, 'shredder.error.stage') === 'decrypt');
    expect(decryptDead).to.have.length(1);
    expect(text(decryptDead[0], 'shredder.error')).to.match(/^record too large once decrypted: \d+ bytes, the output topic takes 1048588 \(max.message.bytes\)$/);
    expect(text(decryptDead[0], 'shredder.source')).to.equal(`${first.output}/0/0`);
    expect(decryptDead[0].value!.equals(encrypted[0].value!)).to.equal(true); // the encrypted record, as it was read
  });

  it('writes a dead letter that its topic cannot take with its headers without its value, says why, counts it, and goes on', async () => {
    const setup = encryptorSetup();
    // a dead letter topic that takes exactly what the input takes: accepted, but a record of the
    // input's largest size does not fit with its reason headers
    await createTopic(kafka, { topic: setup.input, numPartitions: 3, configEntries: limit(2 * MiB) });
    await createTopic(kafka, { topic: setup.dlqTopic, numPartitions: 1, configEntries: limit(2 * MiB) });
    await createTopic(kafka, { topic: setup.output, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '-1' }] }); // the broker's default limit
    encryptor = await startEncryptor(setup);
    const large = randomBytes(2 * MiB - 200);
    await produceInOrder(kafka, setup.input, [
      { key: 'quinn', value: large },
      { key: 'quinn', value: Buffer.from('after') },
    ]);
    const { out, dead } = await processed(setup, 1, 1);
    expect(out).to.have.length(1);
    expect(dead).to.have.length(1);
    expect(dead[0].value).to.equal(null);
    expect(dead[0].key!.toString()).to.equal('quinn');
    expect(text(dead[0], 'shredder.error')).to.match(/^record too large once encrypted/);
    expect(text(dead[0], 'shredder.error.value-bytes')).to.equal(String(large.length));
    expect(text(dead[0], 'shredder.error.value-dropped')).to.match(new RegExp(`more than the dead letter topic's max.message.bytes \\(${2 * MiB}\\): its value is dropped$`));
    expect(await encryptor.metrics.text()).to.match(new RegExp(`^shredder_dead_letters_truncated_total\\{route="${setup.input}->${setup.output}",processor="encrypt"\\} 1$`, 'm'));
  });

  it('refuses to start, exit 2, listing every layout problem at once by variable: partition counts, the keys topic, a smaller dead letter topic', async () => {
    const setup = encryptorSetup({ SHREDDER_LOG_LEVEL: 'info' });
    await createTopic(kafka, { topic: setup.input, numPartitions: 2, configEntries: limit(16 * MiB) });
    await createTopic(kafka, { topic: setup.keysTopic, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] });
    await createTopic(kafka, { topic: setup.dlqTopic, numPartitions: 1, configEntries: limit(MiB) });
    const child = startChildProcessor('encrypt', setup.env);
    const exit = await Promise.race([child.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000))]);
    expect(exit, child.output().slice(-3000)).to.deep.equal({ code: 2, signal: null });
    const failed = child.logs.filter((l) => l.msg === 'encrypt failed to start');
    expect(failed, child.output().slice(-3000)).to.have.length(1);
    const problems = failed[0].problems as string[];
    expect(problems).to.have.length(3);
    expect(problems[0]).to.equal(`SHREDDER_ROUTES, SHREDDER_KEYS_TOPIC: partition counts differ: ${setup.input} has 2, ${setup.keysTopic} has 3; every input topic and the keys topic ${setup.keysTopic} need the same count`);
    expect(problems[1]).to.match(new RegExp(`^SHREDDER_KEYS_TOPIC: the keys topic ${setup.keysTopic} is not compacted \\(cleanup.policy=delete\\)`));
    expect(problems[2]).to.contain(`SHREDDER_DLQ_TOPIC: the dead letter topic ${setup.dlqTopic} takes records of up to ${MiB} bytes (max.message.bytes), less than the input topic ${setup.input} (${16 * MiB})`);
    expect(String(failed[0].error)).to.equal(`3 topic layout problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    // nothing was created: the output topic does not exist
    expect(await withAdmin(kafka, (admin) => admin.listTopics())).not.to.include(setup.output);
    expect(await readTopic(kafka, setup.dlqTopic).then((t) => [...t.values()].flat())).to.have.length(0);
  });
});
