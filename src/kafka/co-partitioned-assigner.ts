// Assigns partition N of every subscribed topic to the same member, like Kafka Streams' tasks: the
// records of a subject on every route and its key in the keys topic then have one owner, so a subject
// never gets two live keys from two instances, and one transactional producer per task fences zombies.
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

export const CO_PARTITIONED_ASSIGNER_NAME = 'KafkaShredderCoPartitioned';

/** Which tasks (partition numbers) each member gets: task i to the i-th member, round robin. */
export function assignTasks(memberIds: string[], partitionCount: number): Map<string, number[]> {
  const members = [...memberIds].sort();
  const tasks = new Map<string, number[]>(members.map((m) => [m, []]));
  for (let task = 0; task < partitionCount; task++) tasks.get(members[task % members.length])!.push(task);
  return tasks;
}

export const coPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: CO_PARTITIONED_ASSIGNER_NAME,
  version: 1,
  async assign({ members, topics }) {
    const partitionsOf = new Map(topics.map((topic) => [topic, cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId)]));
    const taskCount = Math.max(0, ...[...partitionsOf.values()].map((p) => p.length));
    const tasks = assignTasks(members.map((m) => m.memberId), taskCount);
    return [...tasks.entries()].map(([memberId, owned]) => {
      const assignment: Record<string, number[]> = {};
      for (const [topic, partitions] of partitionsOf) assignment[topic] = partitions.filter((p) => owned.includes(p));
      return { memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment, userData: Buffer.alloc(0) }) };
    });
  },
  protocol({ topics }) {
    return {
      name: CO_PARTITIONED_ASSIGNER_NAME,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
    };
  },
});
