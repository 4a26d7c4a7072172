// Metric names and conventions an operator's dashboards rely on, without a broker.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRYPTO_SECONDS_BUCKETS, ProcessorMetrics } from '../../../src/observability/metrics.js';
import { repoRoot } from '../../support/repo-root.js';

describe('metrics', () => {
  it('keep Prometheus\' standard process metric names and carry shredder_build_info', async () => {
    const text = await new ProcessorMetrics('encrypt').text();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(text, name).to.match(new RegExp(`^${name}[{ ]`, 'm'));
    }
    expect(text).not.to.contain('shredder_process_');
    const version = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')).version;
    expect(text).to.contain(`shredder_build_info{version="${version}",nodejs_version="${process.version}",processor="encrypt"} 1`);
  });

  it('count forget requests per route and forgotten subjects once each', async () => {
    const metrics = new ProcessorMetrics('encrypt', { processMetrics: false });
    // one subject's forget request on two routes: the first destroys its key, the second finds none
    metrics.countBatch('a->a-enc', 'a', { in: 1, out: 1, deadLettered: 0, forgetRequests: 1, subjectsForgotten: 1, cryptoNs: 0, cryptoRecords: 0 });
    metrics.countBatch('b->b-enc', 'b', { in: 1, out: 1, deadLettered: 0, forgetRequests: 1, subjectsForgotten: 0, cryptoNs: 0, cryptoRecords: 0 });
    const text = await metrics.text();
    expect(text).to.match(/^shredder_subjects_forgotten_total\{processor="encrypt"\} 1$/m);
    expect(text).to.match(/^shredder_forget_requests_total\{route="a->a-enc",processor="encrypt"\} 1$/m);
    expect(text).to.match(/^shredder_forget_requests_total\{route="b->b-enc",processor="encrypt"\} 1$/m);
  });

  it('size the crypto-time buckets around what a record costs: a tenth of a microsecond to 10 ms', async () => {
    expect(CRYPTO_SECONDS_BUCKETS[0]).to.be.at.most(1e-7);
    expect(CRYPTO_SECONDS_BUCKETS.at(-1)).to.be.at.least(1e-3);
    const metrics = new ProcessorMetrics('encrypt', { processMetrics: false });
    // 1000 records sealed in 450 us: 0.45 us a record, between the 0.2 and 0.5 us bounds
    metrics.countBatch('a->b', 'a', { in: 1000, out: 1000, deadLettered: 0, cryptoNs: 450_000, cryptoRecords: 1000 });
    const text = await metrics.text();
    const bucket = (le: string) => text.split('\n').find((l) => l.startsWith('shredder_crypto_seconds_per_record_bucket{') && l.includes(`le="${le}"`))?.split(' ')[1];
    expect(bucket('2e-7')).to.equal('0');
    expect(bucket('5e-7')).to.equal('1');
  });

  it('count dead letters written without their value per route, among the dead-lettered ones', async () => {
    const metrics = new ProcessorMetrics('decrypt', { processMetrics: false });
    metrics.countBatch('a->b', 'a', { in: 3, out: 1, deadLettered: 2, deadLettersTruncated: 1, cryptoNs: 0, cryptoRecords: 0 });
    metrics.countBatch('a->b', 'a', { in: 1, out: 1, deadLettered: 0, deadLettersTruncated: 0, cryptoNs: 0, cryptoRecords: 0 });
    const text = await metrics.text();
    expect(text).to.match(/^shredder_dead_letters_truncated_total\{route="a->b",processor="decrypt"\} 1$/m);
    expect(text).to.match(/^shredder_records_dead_lettered_total\{route="a->b",processor="decrypt"\} 2$/m);
  });
});
