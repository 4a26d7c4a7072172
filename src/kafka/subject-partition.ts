// The partition a producer's default partitioner puts a record key in: murmur2 of the key, made
// positive, modulo the partition count. Java's default partitioner and kafkajs' DefaultPartitioner
// agree on it, so it is where a subject's records are when the subject is the record key.
import { Partitioners } from 'kafkajs';

const partitioner = Partitioners.DefaultPartitioner();

/** The partition of `key` among `partitionCount` partitions, as the default partitioners choose it. */
export function subjectPartition(key: Uint8Array, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount < 1) throw new RangeError(`a topic has at least one partition, not ${partitionCount}`);
  const partitionMetadata = Array.from({ length: partitionCount }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
  return partitioner({ topic: '', partitionMetadata, message: { key: Buffer.from(key.buffer, key.byteOffset, key.byteLength), value: null } });
}
