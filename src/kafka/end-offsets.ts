// A partition's two end offsets: the last stable offset (what read_committed consumers can reach) and
// the high watermark (past every record written, committed or not). The decryptor needs both: a
// transaction's commit markers are written to each of its partitions separately, so a consumer can
// see a record committed while the key committed with it, on the keys partition, still sits above
// that partition's last stable offset.
import type { Admin, Kafka } from 'kafkajs';

interface OffsetsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadataIfNecessary(): Promise<void>;
  fetchTopicsOffset(topics: { topic: string; fromBeginning: boolean; partitions: { partition: number }[] }[]): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

const READ_UNCOMMITTED = 0;

export class EndOffsets {
  private cluster?: Promise<OffsetsCluster>;

  constructor(private readonly kafka: Kafka, private readonly admin: Admin) {}

  /** The last stable offset (read_committed ListOffsets). */
  async lastStable(topic: string, partition: number): Promise<number> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return Number(offsets.find((o) => o.partition === partition)?.high ?? 0);
  }

  /** The high watermark (read_uncommitted ListOffsets). */
  async highWatermark(topic: string, partition: number): Promise<number> {
    const cluster = await this.uncommittedCluster();
    await cluster.addTargetTopic(topic);
    await cluster.refreshMetadataIfNecessary();
    const [result] = await cluster.fetchTopicsOffset([{ topic, fromBeginning: false, partitions: [{ partition }] }]);
    return Number(result?.partitions.find((p) => p.partition === partition)?.offset ?? 0);
  }

  /**
   * kafkajs offers ListOffsets only through its admin client, always read_committed; its client
   * factory builds the same cluster connection with read_uncommitted (kafkajs 2.2.x, pinned).
   */
  private uncommittedCluster(): Promise<OffsetsCluster> {
    this.cluster ??= (async () => {
      const symbol = Object.getOwnPropertySymbols(this.kafka).find((s) => s.description === 'private:Kafka:createCluster');
      const create = symbol && (this.kafka as unknown as Record<symbol, unknown>)[symbol];
      if (typeof create !== 'function') throw new Error('this kafkajs version does not expose its cluster factory: the decryptor needs kafkajs 2.2.x');
      const cluster = (create as (options: object) => OffsetsCluster)({ isolationLevel: READ_UNCOMMITTED, allowAutoTopicCreation: false });
      await cluster.connect();
      return cluster;
    })();
    this.cluster.catch(() => (this.cluster = undefined));
    return this.cluster;
  }

  async close(): Promise<void> {
    const cluster = this.cluster;
    this.cluster = undefined;
    await cluster?.then((c) => c.disconnect()).catch(() => undefined); // (a cluster that never connected has nothing to close)
  }
}
