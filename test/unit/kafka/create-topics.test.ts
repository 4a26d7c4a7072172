// createTopicsAndWait: the broker answers that cannot be provoked on demand from a real broker (a KRaft
// broker that does not know a topic it has just created; another client creating it first), played by
// an admin that answers as the broker did in those runs.
import { expect } from 'chai';
import type { Admin } from 'kafkajs';
import { createTopicsAndWait } from '../../../src/kafka/topics.js';

const unknownTopic = () => Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
const withLeaders = (leader: number) => ({ topics: [{ name: 't', partitions: [{ partitionId: 0, leader }] }] });

/** An admin whose createTopics and fetchTopicMetadata give the listed answers in turn (an Error is thrown). */
function answering(create: unknown, metadata: unknown[]): Admin & { metadataCalls: number } {
  const admin = {
    metadataCalls: 0,
    createTopics: async () => {
      if (create instanceof Error) throw create;
      return create;
    },
    fetchTopicMetadata: async () => {
      const answer = metadata[Math.min(admin.metadataCalls++, metadata.length - 1)];
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return admin as unknown as Admin & { metadataCalls: number };
}

describe('createTopicsAndWait', () => {
  const topics = [{ topic: 't', numPartitions: 1 }];

  it('returns at once when kafkajs created the topics and saw their leaders', async () => {
    const admin = answering(true, [unknownTopic()]);
    await createTopicsAndWait(admin, topics);
    expect(admin.metadataCalls).to.equal(0);
  });

  it('waits out UNKNOWN_TOPIC_OR_PARTITION after CreateTopics until every partition has a leader', async () => {
    const admin = answering(unknownTopic(), [unknownTopic(), withLeaders(-1), withLeaders(1)]);
    await createTopicsAndWait(admin, topics);
    expect(admin.metadataCalls).to.equal(3);
  });

  it('waits for leaders when another client created the topics first (createTopics answered false)', async () => {
    const admin = answering(false, [withLeaders(-1), withLeaders(1)]);
    await createTopicsAndWait(admin, topics);
    expect(admin.metadataCalls).to.equal(2);
  });

  it('passes on any other error, and gives up after the timeout', async () => {
    const denied = Object.assign(new Error('denied'), { type: 'TOPIC_AUTHORIZATION_FAILED' });
    await createTopicsAndWait(answering(denied, []), topics).then(() => expect.fail('resolved'), (err) => expect(err).to.equal(denied));
    const never = answering(unknownTopic(), [withLeaders(-1)]);
    await createTopicsAndWait(never, topics, 250).then(() => expect.fail('resolved'), (err) => expect((err as Error).message).to.match(/no leader after 250 ms/));
  });
});
