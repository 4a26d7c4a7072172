// The subject's partition, as producers' default partitioners choose it: Kafka's own murmur2 vectors
// (the Java client's UtilsTest), made positive and taken modulo the partition count.
import { expect } from 'chai';
import { subjectPartition } from '../../../src/kafka/subject-partition.js';

// Utils.murmur2 of these keys' bytes, from Apache Kafka's UtilsTest.testMurmur2
const MURMUR2: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

describe('subject partition', () => {
  it("is Java's default partitioner: (murmur2(key) & 0x7fffffff) % partitions", () => {
    for (const [key, hash] of MURMUR2) {
      for (const partitions of [1, 3, 7, 12, 100]) expect(subjectPartition(Buffer.from(key), partitions), `${key} of ${partitions}`).to.equal((hash & 0x7fffffff) % partitions);
    }
  });

  it('takes a view of a larger buffer as its own bytes, and refuses a partition count below one', () => {
    const slab = Buffer.from('xxfoobaryy');
    expect(subjectPartition(slab.subarray(2, 8), 7)).to.equal(subjectPartition(Buffer.from('foobar'), 7));
    expect(() => subjectPartition(Buffer.from('a'), 0)).to.throw(RangeError);
  });
});
