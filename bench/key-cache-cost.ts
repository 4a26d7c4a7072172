// The memory one cached key holds (run by bench/scale.bench.ts in a process of its own, so that no
// earlier phase's garbage or freed memory blurs it): a partition's keys (PartitionKeys, its default
// cache bound) given that many new keys in batches of 10k, committed to a store; then the encryptor's
// table of subjects ready for the sealing thread (ReadySubjects, the same bound) given the same keys,
// where the encryptor keeps the keys it makes for a batch keyed first. Measured after full
// collections (--expose-gc). Prints one JSON line.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHACHA20_POLY1305 } from '../src/crypto/aead-algorithms.js';
import { KeyStore } from '../src/keys/key-store.js';
import { MasterKey } from '../src/keys/master-key.js';
import { PartitionKeys } from '../src/keys/partition-keys.js';
import { readySubjects } from '../src/encryptor/ready-subjects.js';

const BATCH = 10_000;
const subjectOf = (i: number) => Buffer.from(`cached-${String(i).padStart(8, '0')}`);

function memory() {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'shredder-bench-cache-'));
  const store = await KeyStore.open(dir);
  try {
    const keys = new PartitionKeys(0, store, new MasterKey(randomBytes(32), 1));
    const bound = keys.cacheCapacity;
    // (one batch first, so that the store's memtable and the modules' first allocations are in the baseline)
    const fill = async (from: number, to: number) => {
      for (let at = from; at < to; at += BATCH) {
        const subjects = Array.from({ length: Math.min(BATCH, to - at) }, (_, i) => subjectOf(at + i));
        await keys.load(subjects);
        for (const subject of subjects) keys.createKey(subject, CHACHA20_POLY1305, Date.now());
        await keys.commit(undefined);
      }
    };
    await fill(0, BATCH);
    const before = memory();
    await fill(BATCH, bound);
    const after = memory();
    // (used after the measurement, so that nothing lets the keys be collected before it)
    if (!keys.liveKey(subjectOf(bound - 1))) throw new Error('the last cached key is gone');
    const per = (field: 'heapUsed' | 'external' | 'rss', from = before, to = after) => (to[field] - from[field]) / (bound - BATCH);
    const ready = readySubjects(keys);
    for (let i = 0; i < BATCH; i++) ready.add(subjectOf(i), keys.liveKey(subjectOf(i))!, undefined);
    const beforeReady = memory();
    for (let i = BATCH; i < bound; i++) ready.add(subjectOf(i), keys.liveKey(subjectOf(i))!, undefined);
    const afterReady = memory();
    if (ready.size !== bound) throw new Error(`the ready table holds ${ready.size} subjects, ${bound} expected`);
    console.log(JSON.stringify({
      keys: bound,
      heapPerKey: per('heapUsed'),
      externalPerKey: per('external'),
      rssPerKey: per('rss'),
      readyHeapPerKey: per('heapUsed', beforeReady, afterReady),
      readyRssPerKey: per('rss', beforeReady, afterReady),
    }));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
