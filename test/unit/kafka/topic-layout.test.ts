// The topic layout's problems, without a broker: each names the variables (or library options) of the
// topics to fix, all are reported at once, and nothing is created while there is one; the dead letter
// topic takes what the inputs take.
import { expect } from 'chai';
import type { Admin, ITopicConfig } from 'kafkajs';
import { exitCodeFor } from '../../../src/errors/shredder-errors.js';
import { decryptorTopicRoles, DLQ_HEADER_ROOM_BYTES, DLQ_MAX_MESSAGE_BYTES, encryptorTopicRoles, OUTPUT_ROOM_BYTES, ensureTopics, layoutProblems, TopicLayoutError, type DescribedTopics } from '../../../src/kafka/topics.js';
import { createLogger } from '../../../src/observability/logger.js';

const MiB = 1024 * 1024;
const settings = { keysTopic: 'keys', dlqTopic: 'dlq', erasureDeadlineMs: 86_400_000, plaintextRetentionMs: 86_400_000 };
const roles = encryptorTopicRoles([{ from: 'in-a', to: 'out-a' }, { from: 'in-b', to: 'out-b' }], 'audit');
const compacted = { 'cleanup.policy': 'compact' };

type Topic = { partitions: number; config?: Record<string, string> };
const described = (topics: Record<string, Topic>): DescribedTopics =>
  new Map(Object.entries(topics).map(([name, t]) => [name, { partitions: t.partitions, config: new Map(Object.entries(t.config ?? {})) }]));

/** An admin over `topics` (name -> partitions and configuration) that records the topics it is asked to create. */
function fakeAdmin(topics: Record<string, Topic>): Admin & { created: ITopicConfig[][] } {
  const existing = new Map(Object.entries(topics));
  const created: ITopicConfig[][] = [];
  const admin = {
    created,
    listTopics: async () => [...existing.keys()],
    fetchTopicMetadata: async ({ topics: names }: { topics: string[] }) => ({
      topics: names.filter((n) => existing.has(n)).map((name) => ({ name, partitions: Array.from({ length: existing.get(name)!.partitions }, (_, partitionId) => ({ partitionId, leader: 1 })) })),
    }),
    describeConfigs: async ({ resources }: { resources: { name: string }[] }) => ({
      resources: resources.map(({ name }) => ({
        resourceName: name,
        // (the broker answers every setting, its default when the topic has none: 1 MB here)
        configEntries: Object.entries({ 'max.message.bytes': '1048588', 'cleanup.policy': 'delete', ...existing.get(name)!.config }).map(([configName, configValue]) => ({ configName, configValue })),
      })),
    }),
    createTopics: async ({ topics: specs }: { topics: ITopicConfig[] }) => {
      created.push(specs);
      for (const spec of specs) existing.set(spec.topic, { partitions: spec.numPartitions!, config: Object.fromEntries((spec.configEntries ?? []).map((e) => [e.name, e.value])) });
      return true;
    },
  };
  return admin as unknown as Admin & { created: ITopicConfig[][] };
}

const silent = createLogger('silent');
const rejection = (work: Promise<unknown>) => work.then(() => expect.fail('resolved'), (err: unknown) => err as TopicLayoutError);

describe('topic layout', () => {
  it('names SHREDDER_ROUTES when partition counts differ, and SHREDDER_KEYS_TOPIC too when the keys topic is the odd one', () => {
    const inputOdd = layoutProblems(described({ 'in-a': { partitions: 3 }, 'in-b': { partitions: 4 }, keys: { partitions: 3, config: compacted } }), settings, roles);
    expect(inputOdd).to.deep.equal(['SHREDDER_ROUTES: partition counts differ: in-a has 3, in-b has 4, keys has 3; every input topic and the keys topic keys need the same count']);
    const keysOdd = layoutProblems(described({ 'in-a': { partitions: 3 }, 'in-b': { partitions: 3 }, keys: { partitions: 6, config: compacted } }), settings, roles);
    expect(keysOdd).to.have.length(1);
    expect(keysOdd[0]).to.match(/^SHREDDER_ROUTES, SHREDDER_KEYS_TOPIC: partition counts differ: in-a has 3, in-b has 3, keys has 6;/);
  });

  it('names SHREDDER_KEYS_TOPIC for a keys topic that is not compacted, and SHREDDER_ROUTES for outputs with too few partitions', () => {
    const problems = layoutProblems(described({ 'in-a': { partitions: 3 }, keys: { partitions: 3, config: { 'cleanup.policy': 'delete' } }, 'out-b': { partitions: 2 } }), settings, roles);
    expect(problems).to.deep.equal([
      'SHREDDER_KEYS_TOPIC: the keys topic keys is not compacted (cleanup.policy=delete); forgotten keys would never be erased: set cleanup.policy=compact on it',
      'SHREDDER_ROUTES: output topics need at least 3 partitions (records keep their partition): out-b has 2',
    ]);
  });

  it('names SHREDDER_DLQ_TOPIC, both topics and max.message.bytes when the dead letter topic takes less than an input', () => {
    const layout = (dlqBytes: number) =>
      layoutProblems(described({ 'in-a': { partitions: 3, config: { 'max.message.bytes': String(16 * MiB) } }, keys: { partitions: 3, config: compacted }, dlq: { partitions: 1, config: { 'max.message.bytes': String(dlqBytes) } } }), settings, roles);
    expect(layout(10 * MiB)).to.deep.equal([
      `SHREDDER_DLQ_TOPIC: the dead letter topic dlq takes records of up to ${10 * MiB} bytes (max.message.bytes), less than the input topic in-a (${16 * MiB}): ` +
        `a record of it that cannot be processed could not be dead-lettered whole; set max.message.bytes=${16 * MiB} or more on dlq`,
    ]);
    expect(layout(16 * MiB)).to.deep.equal([]);
  });

  it('reports every problem at once in one TopicLayoutError (exit 2), and creates nothing', async () => {
    const admin = fakeAdmin({
      'in-a': { partitions: 2, config: { 'max.message.bytes': String(16 * MiB) } },
      keys: { partitions: 3, config: { 'cleanup.policy': 'delete' } },
      dlq: { partitions: 1 },
    });
    const error = await rejection(ensureTopics(admin, settings, roles, silent));
    expect(error).to.be.instanceOf(TopicLayoutError);
    expect(exitCodeFor(error)).to.equal(2);
    expect(error.problems.map((p) => p.split(':')[0])).to.deep.equal(['SHREDDER_ROUTES, SHREDDER_KEYS_TOPIC', 'SHREDDER_KEYS_TOPIC', 'SHREDDER_DLQ_TOPIC']);
    expect(error.message.split('\n')).to.deep.equal(['3 topic layout problems:', ...error.problems.map((p) => `  - ${p}`)]);
    expect(admin.created).to.deep.equal([]);
    // one problem stays one line, as forget and verify-erasure print it
    expect(new TopicLayoutError(['SHREDDER_KEYS_TOPIC: x']).message).to.equal('SHREDDER_KEYS_TOPIC: x');
  });

  it('names the library\'s options instead of variables for the DecryptingConsumer', () => {
    const problems = layoutProblems(described({ enc: { partitions: 3 }, keys: { partitions: 4, config: { 'cleanup.policy': 'delete' } } }), settings, {
      inputs: ['enc'], outputs: [], plaintext: [], encrypted: ['enc'], names: { routes: 'topics', keysTopic: 'keysTopic', dlqTopic: 'dlqTopic' },
    });
    expect(problems.map((p) => p.split(':')[0])).to.deep.equal(['topics, keysTopic', 'keysTopic']);
  });

  it('creates the dead letter topic to take what the largest input takes, its headers included', async () => {
    const large = fakeAdmin({ 'in-a': { partitions: 3, config: { 'max.message.bytes': String(16 * MiB) } }, 'in-b': { partitions: 3 } });
    const layout = await ensureTopics(large, settings, roles, silent);
    const dlq = large.created.flat().find((t) => t.topic === 'dlq')!;
    expect(dlq.configEntries).to.deep.include({ name: 'max.message.bytes', value: String(16 * MiB + DLQ_HEADER_ROOM_BYTES) });
    expect(layout.dlqMaxMessageBytes).to.equal(16 * MiB + DLQ_HEADER_ROOM_BYTES);
    // inputs of the broker's default: the 10 MiB of before
    const small = fakeAdmin({ 'in-a': { partitions: 3 } });
    await ensureTopics(small, settings, roles, silent);
    expect(small.created.flat().find((t) => t.topic === 'dlq')!.configEntries).to.deep.include({ name: 'max.message.bytes', value: String(DLQ_MAX_MESSAGE_BYTES) });
  });

  it('creates the outputs and the dead letter topic after inputs it creates, from what the broker gave them', async () => {
    const admin = fakeAdmin({});
    await ensureTopics(admin, settings, roles, silent);
    expect(admin.created.map((call) => call.map((t) => t.topic))).to.deep.equal([['in-a', 'in-b', 'keys', 'audit'], ['out-a', 'out-b', 'dlq']]);
  });

  it('creates an output to take what its route\'s input takes, when that is more than Kafka\'s default', async () => {
    const admin = fakeAdmin({ 'in-a': { partitions: 3, config: { 'max.message.bytes': String(16 * MiB) } }, 'in-b': { partitions: 3 } });
    const layout = await ensureTopics(admin, settings, roles, silent);
    const created = new Map(admin.created.flat().map((t) => [t.topic, Object.fromEntries(t.configEntries!.map((e) => [e.name, e.value]))]));
    expect(created.get('out-a')).to.deep.equal({ 'retention.ms': '-1', 'max.message.bytes': String(16 * MiB + OUTPUT_ROOM_BYTES) });
    expect(created.get('out-b')).to.deep.equal({ 'retention.ms': '-1' });
    expect(layout.outputsMaxMessageBytes).to.deep.equal(new Map([['out-a', 16 * MiB + OUTPUT_ROOM_BYTES], ['out-b', 1_048_588]]));
    // the decryptor's plaintext outputs keep their short retention
    const decrypt = fakeAdmin({ enc: { partitions: 3, config: { 'max.message.bytes': String(4 * MiB) } } });
    await ensureTopics(decrypt, settings, decryptorTopicRoles([{ from: 'enc', to: 'plain' }]), silent);
    const plain = decrypt.created.flat().find((t) => t.topic === 'plain')!;
    expect(Object.fromEntries(plain.configEntries!.map((e) => [e.name, e.value]))).to.deep.equal({ 'retention.ms': '86400000', 'max.message.bytes': String(4 * MiB + OUTPUT_ROOM_BYTES) });
  });
});
