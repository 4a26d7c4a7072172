// Compressed record batches end to end on the real broker. Records a Java producer (Kafka's own
// ConsoleProducer) wrote with each codec are all encrypted; the encrypted records, written again
// compressed with each codec (the encryptor writes uncompressed), are decrypted by the decryptor
// and by the library's DecryptingConsumer; the decryptor's output, compressed as KAFKA_COMPRESSION
// says, reads back exactly through kafkajs and Kafka's own ConsoleConsumer; and the segment files
// say each batch's codec.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Decryptor } from '../../src/decryptor/decryptor.js';
import type { DecryptingConsumer, DecryptedMessage } from '../../src/decryptor/decrypting-consumer.js';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import { compressionType } from '../../src/kafka/compression.js';
import { localBrokerLogDirectory } from '../support/broker.hooks.js';
import { decryptorSetup, startDecryptingConsumer, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { dumpLogBatches, javaConsume, javaProduce, type ConsoleRecord, type ConsumedRecord } from '../support/java-console.js';
import { createTopic, eventually, readExactly, readTopic, testBrokers, testKafka, uniqueName } from '../support/kafka.js';

const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
type Codec = (typeof CODECS)[number];
/** Per codec: about 250 KB, so a partition's batches span several 32 KiB snappy and 64 KiB lz4 blocks. */
const RECORDS = 500;

/** `key` and `value` of each record by partition, in order. */
type Plain = Map<number, ConsoleRecord[]>;
const plain = (byPartition: Map<number, KafkaMessage[]>): Plain =>
  new Map([...byPartition].map(([p, records]) => [p, records.map((m) => ({ key: m.key!.toString(), value: m.value!.toString() }))]));
function byPartition(records: (ConsoleRecord & { partition: number })[]): Plain {
  const result: Plain = new Map();
  for (const { partition, key, value } of records) result.set(partition, [...(result.get(partition) ?? []), { key, value }]);
  return result;
}
/** Partitions that hold records (the comparisons ignore empty ones). */
const nonEmpty = (records: Plain): Plain => new Map([...records].filter(([, r]) => r.length > 0).sort(([a], [b]) => a - b));

describe('compressed record batches (Java producers, KAFKA_COMPRESSION)', function () {
  this.timeout(120_000);
  let kafka: Kafka;
  let setup: EncryptorSetup;
  let encryptor: Encryptor | undefined;
  const decryptors: Decryptor[] = [];
  let app: { consumer: DecryptingConsumer; received: DecryptedMessage[] } | undefined;
  const sent = new Map<Codec, ConsoleRecord[]>();
  const topics = new Map<Codec, { input: string; encrypted: string; recompressed: string; decrypted: string }>();
  /** What the encryptor read from each input topic, by partition. */
  const inputs = new Map<Codec, Plain>();
  /** The decryptor that writes lz4 (the others' decryptor writes zstd). */
  const lz4Output = uniqueName('decrypted-as-lz4');

  before(async function () {
    this.timeout(120_000);
    kafka = testKafka();
    for (const codec of CODECS) {
      topics.set(codec, {
        input: uniqueName(`plain-${codec}`),
        encrypted: uniqueName(`encrypted-${codec}`),
        recompressed: uniqueName(`encrypted-${codec}-again`),
        decrypted: uniqueName(`decrypted-${codec}`),
      });
      sent.set(codec, Array.from({ length: RECORDS }, (_, i) => ({
        key: `user-${i % 23}`,
        value: `{"codec":"${codec}","event":${i},"email":"person${i % 23}@example.org","note":"${randomBytes(150).toString('base64')}","padding":"${'x'.repeat(200)}"}`,
      })));
    }
    const t = (codec: Codec) => topics.get(codec)!;
    setup = encryptorSetup({ SHREDDER_ROUTES: CODECS.map((c) => `${t(c).input}->${t(c).encrypted}`).join(',') });
    encryptor = await startEncryptor(setup); // (creates the input topics: the broker does not auto-create)
    await Promise.all(CODECS.map((codec) => javaProduce(testBrokers(), t(codec).input, codec, sent.get(codec)!)));

    // the encrypted records, written again as record batches of each codec
    const producer = kafka.producer();
    await producer.connect();
    try {
      for (const codec of CODECS) {
        inputs.set(codec, plain(await readTopic(kafka, t(codec).input)));
        const encrypted = await readExactly(kafka, t(codec).encrypted, RECORDS);
        await createTopic(kafka, { topic: t(codec).recompressed, numPartitions: encrypted.size });
        const messages = [...encrypted].flatMap(([partition, records]) =>
          records.map((m) => ({ key: m.key, value: m.value, partition, timestamp: m.timestamp, headers: m.headers })));
        await producer.send({ topic: t(codec).recompressed, messages, compression: compressionType(codec) });
      }
    } finally {
      await producer.disconnect();
    }

    const decryptorOf = (routes: string[], compression: string) =>
      startDecryptor(decryptorSetup(setup, { SHREDDER_ROUTES: routes.join(','), KAFKA_COMPRESSION: compression }));
    const started = await Promise.all([
      decryptorOf(CODECS.map((c) => `${t(c).recompressed}->${t(c).decrypted}`), 'zstd'),
      decryptorOf([`${t('snappy').recompressed}->${lz4Output}`], 'lz4'),
    ]);
    decryptors.push(...started);
    app = await startDecryptingConsumer(setup, { topics: CODECS.map((c) => t(c).recompressed) });
  });

  after(async () => {
    await app?.consumer.stop();
    for (const decryptor of decryptors) await decryptor.stop();
    await encryptor?.stop();
  });

  for (const codec of CODECS) {
    it(`${codec}: every record a Java producer wrote with ${codec} is encrypted, and the decryptor writes its exact plaintext, in order per partition`, async () => {
      const { input, encrypted, decrypted } = topics.get(codec)!;
      const read = inputs.get(codec)!;
      // kafkajs read the Java producer's batches: every record sent, each partition in the order sent
      const all = [...read.values()].flat();
      expect(all.length, input).to.equal(RECORDS);
      for (const records of read.values()) {
        const order = records.map((r) => sent.get(codec)!.findIndex((s) => s.value === r.value));
        expect(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1])), 'in the order sent').to.equal(true);
      }
      const ciphertexts = await readExactly(kafka, encrypted, RECORDS);
      for (const [partition, records] of ciphertexts) {
        const source = read.get(partition) ?? [];
        expect(records.map((m) => m.key!.toString()), `partition ${partition}: keys`).to.deep.equal(source.map((r) => r.key));
        records.forEach((m, i) => {
          expect(m.value!.length, 'an envelope: 38 bytes more').to.equal(Buffer.byteLength(source[i].value) + 38);
          expect(m.value!.includes(Buffer.from('@example.org')), 'no plaintext survives').to.equal(false);
        });
      }
      expect(nonEmpty(plain(await readExactly(kafka, decrypted, RECORDS)))).to.deep.equal(nonEmpty(read));
    });
  }

  it('the library DecryptingConsumer reads snappy, lz4, zstd and gzip batches of encrypted records to their exact plaintexts', async () => {
    const received = await eventually('every record handed to the application', async () => {
      if (app!.received.length > RECORDS * CODECS.length) throw new Error(`${app!.received.length} records handed over`);
      return app!.received.length === RECORDS * CODECS.length && app!.received;
    });
    for (const codec of CODECS) {
      const mine = received.filter((m) => m.topic === topics.get(codec)!.recompressed);
      expect(mine.every((m) => m.status === 'ok'), codec).to.equal(true);
      const handed = byPartition(mine.map((m) => ({ partition: m.partition, key: m.key!.toString(), value: m.value!.toString() })));
      expect(nonEmpty(handed), codec).to.deep.equal(nonEmpty(inputs.get(codec)!));
    }
  });

  it('the decryptor with KAFKA_COMPRESSION=zstd or lz4 writes output that kafkajs and the Java ConsoleConsumer both read back exactly', async () => {
    const outputs: [string, Plain][] = [[topics.get('zstd')!.decrypted, inputs.get('zstd')!], [lz4Output, inputs.get('snappy')!]];
    const javaReads = await Promise.all(outputs.map(([topic]) => javaConsume(testBrokers(), topic, RECORDS)));
    for (const [i, [topic, expected]] of outputs.entries()) {
      expect(nonEmpty(plain(await readExactly(kafka, topic, RECORDS))), `${topic}, read by kafkajs`).to.deep.equal(nonEmpty(expected));
      expect(nonEmpty(byPartition(javaReads[i] as ConsumedRecord[])), `${topic}, read by the Java ConsoleConsumer`).to.deep.equal(nonEmpty(expected));
    }
  });

  it('writes and reads record batches with the codecs the segment files name (DumpLogSegments)', async function () {
    const logDir = localBrokerLogDirectory();
    if (!logDir) this.skip(); // (KAFKA_BROKERS names another cluster: its files are out of reach)
    const t = (codec: Codec) => topics.get(codec)!;
    const expected = new Map<string, string>([
      ...CODECS.flatMap((c): [string, string][] => [[t(c).input, c], [t(c).encrypted, 'none'], [t(c).recompressed, c], [t(c).decrypted, 'zstd']]),
      [lz4Output, 'lz4'],
    ]);
    const batches = await dumpLogBatches(logDir!, [...expected.keys()]);
    for (const [topic, codec] of expected) {
      const data = batches.get(topic)!.filter((b) => !b.isControl); // (transaction markers are uncompressed)
      expect(data.reduce((n, b) => n + b.count, 0), `${topic}: records in its batches`).to.equal(RECORDS);
      expect([...new Set(data.map((b) => b.compression))], topic).to.deep.equal([codec]);
    }
  });
});
