// The erasure-overdue alert's input: how long a forget has waited for its keys partition's segment to roll.
import { expect } from 'chai';
import { keysSegmentRoller, SegmentRoller } from '../../../src/encryptor/segment-roll.js';
import { createLogger } from '../../../src/observability/logger.js';
import { ProcessorMetrics } from '../../../src/observability/metrics.js';

const silent = createLogger('silent');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('segment roller', () => {
  it('reports a partition pending from its oldest forget until the marker after the last one is written', async () => {
    const seen: [number, number | undefined][] = [];
    const appended: number[] = [];
    const roller = new SegmentRoller(0, async (partition) => void appended.push(partition), silent, (p, since) => seen.push([p, since]));
    const before = Date.now();
    roller.forgotten(1);
    await sleep(200);
    roller.forgotten(1); // (the wait restarts, the oldest time stays)
    expect(seen).to.have.length(1);
    expect(seen[0][0]).to.equal(1);
    expect(seen[0][1]).to.be.within(before, before + 100);
    await sleep(1300); // (segment.ms 0 + the roller's 1 s)
    expect(appended).to.deep.equal([1]);
    expect(seen[1]).to.deep.equal([1, undefined]);
    roller.stop();
  });

  it('keeps a partition pending when its marker cannot be written', async () => {
    const seen: [number, number | undefined][] = [];
    const roller = new SegmentRoller(0, () => Promise.reject(new Error('fenced')), silent, (p, since) => seen.push([p, since]));
    roller.forgotten(2);
    await sleep(1300);
    expect(seen.map(([p, since]) => [p, since === undefined])).to.deep.equal([[2, false]]);
    roller.stop();
  });

  it('exports the oldest pending forget per partition and the erasure deadline', async () => {
    const metrics = new ProcessorMetrics('encrypt', { processMetrics: false });
    const roller = keysSegmentRoller(() => undefined, 'keys', 4000, silent, metrics);
    roller.forgotten(0);
    const text = await metrics.text();
    expect(text).to.match(/^shredder_erasure_deadline_seconds\{processor="encrypt"\} 4$/m);
    const since = Number(/^shredder_erasure_pending_since_timestamp_seconds\{partition="0",processor="encrypt"\} (\S+)$/m.exec(text)?.[1]);
    expect(since).to.be.within(Date.now() / 1000 - 5, Date.now() / 1000);
    roller.stop();
  });
});
