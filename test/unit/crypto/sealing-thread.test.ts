// The sealing thread: the envelopes it seals on its worker are what node:crypto opens, with fresh
// nonces; the memory its envelopes keep alive holds no key, associated data or plaintext, and is
// reused once their batch is released, the released envelopes emptied; it takes only large batches of the wasm core's algorithm; a thread that dies fails
// its batches and the next batch gets a new one, until threads keep failing (then it takes no more
// batches); closing it fails what is still on it.

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { AES_256_GCM, CHACHA20_POLY1305 } from '../../../src/crypto/index.js';
import { SEALING_THREAD_MIN_BYTES, SealingThread } from '../../../src/crypto/off-thread/sealing-thread.js';
import { prng, testSeed } from './helpers.js';
import { expectEnvelopesOpen as expectOpens, nonceOf, PREFIX, randomCases, sealBatch } from './envelope-cases.js';

describe('sealing thread', function () {
  this.timeout(60_000);
  const seed = testSeed();
  let thread: SealingThread;

  beforeEach(() => {
    thread = new SealingThread();
  });

  afterEach(() => thread.close());

  it(`seals envelopes node:crypto opens, with a fresh nonce each, several batches at once (seed ${seed})`, async () => {
    const next = prng(seed);
    // keys shared by several items; several calls of the core on the thread; three batches queued
    const batches = [randomCases(2000, next, 600, 37), randomCases(5, next), randomCases(700, next, 3000, 3)];
    const sealed = await Promise.all(batches.map((cases) => thread.sealEnvelopes(sealBatch(cases, next))));
    batches.forEach((cases, b) => expectOpens(cases, sealed[b].envelopes, `batch ${b} (seed ${seed})`));
    const nonces = new Set(sealed.flatMap((s) => s.envelopes).map((e) => Buffer.from(nonceOf(e)).toString('hex')));
    expect(nonces.size, 'distinct nonces').to.equal(batches.reduce((n, cases) => n + cases.length, 0));
    expect(sealed.every((s) => s.ns > 0), 'time on the thread reported').to.equal(true);
  });

  it('leaves no key, associated data (subject ids) or plaintext in the memory its envelopes keep alive', async () => {
    const next = prng(seed + 1);
    const cases = randomCases(3000, next, 400, 10).map((c, i) => ({ ...c, tail: Buffer.from(`subject-id-${i}-${randomBytes(8).toString('hex')}`) }));
    const { envelopes, release } = await thread.sealEnvelopes(sealBatch(cases, next));
    const memories = [...new Set(envelopes.map((e) => e.buffer))].map((b) => Buffer.from(b));
    expect(memories.length, 'several runs').to.be.greaterThan(2);
    for (const memory of memories) {
      for (const c of cases) {
        expect(memory.indexOf(c.key.key), 'a key').to.equal(-1);
        expect(memory.indexOf(c.tail), 'a subject id').to.equal(-1);
        if (c.plaintext.length >= 16) expect(memory.indexOf(c.plaintext), 'a plaintext').to.equal(-1);
      }
    }
    expectOpens(cases, envelopes, 'after the wipe');
    release();
  });

  it('reuses the memory of a released batch for the next ones, its envelopes emptied, never showing theirs', async () => {
    const next = prng(seed + 4);
    const pool = (thread as unknown as { pool: ArrayBuffer[] }).pool;
    const first = randomCases(4000, next, 400, 10);
    const sealed = await thread.sealEnvelopes(sealBatch(first, next));
    expect(pool, 'nothing reusable before the release').to.have.length(0);
    const kept = sealed.envelopes.slice(0, 3).map((e) => Buffer.from(e)); // (copies, read before the release)
    sealed.release();
    const reusable = pool.length;
    expect(reusable, 'the batch\'s buffers kept for reuse').to.be.greaterThan(2);
    expect(sealed.envelopes.every((e) => e.length === 0), 'released envelopes are empty').to.equal(true);
    sealed.release(); // (a second release gives nothing back twice)
    expect(pool).to.have.length(reusable);
    const second = randomCases(2000, next, 400, 10);
    const again = await thread.sealEnvelopes(sealBatch(second, next));
    expect(pool.length, 'the next batch took the released buffers').to.be.lessThan(reusable);
    expectOpens(second, again.envelopes, 'sealed in reused buffers');
    expectOpens(first.slice(0, 3), kept, 'copies taken before the release');
    expect(sealed.envelopes.every((e) => e.length === 0), 'still empty once their memory holds other envelopes').to.equal(true);
    again.release();
  });

  it('refuses a malformed batch at once, even when the bad item lies in a later run, and seals the next batch', async () => {
    const next = prng(seed + 2);
    const good = sealBatch(randomCases(3, next), next);
    expect(() => thread.sealEnvelopes({ ...good, keyIndexes: [0, 3, 2] })).to.throw(RangeError, /item 1: key index 3/);
    expect(() => thread.sealEnvelopes({ ...good, keys: [good.keys[0], { key: randomBytes(31), prefix: randomBytes(PREFIX) }, good.keys[2]] })).to.throw(RangeError, /key 1: key must be 32 bytes/);
    // items are checked as they are packed: the runs before the bad item are already on the thread
    const cases = randomCases(3000, next, 400, 5);
    const large = sealBatch(cases, next);
    const plaintexts = [...large.plaintexts];
    plaintexts[2500] = 'not bytes' as unknown as Uint8Array;
    expect(() => thread.sealEnvelopes({ ...large, plaintexts })).to.throw(TypeError, /2500/);
    const aadStarts = Array.from(large.aadStarts);
    aadStarts[2999] = aadStarts[2998]; // overlaps the previous item's
    expect(() => thread.sealEnvelopes({ ...large, aadStarts })).to.throw(RangeError, /item 2999: associated data must follow/);
    expectOpens(cases, (await thread.sealEnvelopes(sealBatch(cases, next))).envelopes, 'the next batch');
  });

  it('takes only batches of the wasm core\'s algorithm of at least SEALING_THREAD_MIN_BYTES', async () => {
    expect(thread.takes(CHACHA20_POLY1305, SEALING_THREAD_MIN_BYTES)).to.equal(true);
    expect(thread.takes(CHACHA20_POLY1305, SEALING_THREAD_MIN_BYTES - 1)).to.equal(false);
    expect(thread.takes(AES_256_GCM, 100 * SEALING_THREAD_MIN_BYTES)).to.equal(false);
    await thread.close();
    expect(thread.takes(CHACHA20_POLY1305, SEALING_THREAD_MIN_BYTES), 'once closed').to.equal(false);
  });

  it('fails the batches of a thread that died; the next batch gets a new thread', async () => {
    const next = prng(seed + 3);
    const cases = randomCases(3000, next, 2000, 5);
    const first = thread.sealEnvelopes(sealBatch(cases, next)).then(() => undefined, (err: Error) => err);
    // the worker dies under the batch (as if it crashed)
    await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    expect((await first)?.message).to.match(/the sealing thread exited/);
    const again = await thread.sealEnvelopes(sealBatch(cases, next));
    expectOpens(cases, again.envelopes, 'on the new thread');
  });

  it('gives up on threads that cannot start, after a few, and then takes no batch (they are sealed in-thread)', async () => {
    const broken = new SealingThread(new URL('./no-such-worker.js', import.meta.url));
    try {
      const next = prng(seed + 5);
      for (let attempt = 1; attempt <= 3; attempt++) {
        expect(broken.takes(CHACHA20_POLY1305, SEALING_THREAD_MIN_BYTES), `attempt ${attempt}`).to.equal(true);
        const failure = await broken.sealEnvelopes(sealBatch(randomCases(10, next), next)).then(() => undefined, (err: Error) => err);
        expect(failure, `attempt ${attempt}`).to.be.instanceOf(Error);
      }
      expect(broken.takes(CHACHA20_POLY1305, SEALING_THREAD_MIN_BYTES), 'after three threads failed').to.equal(false);
    } finally {
      await broken.close();
    }
  });

  it('fails what is still on it when closed, and everything after', async () => {
    const next = prng(seed + 4);
    const pending = thread.sealEnvelopes(sealBatch(randomCases(3000, next, 2000, 5), next)).then(() => undefined, (err: Error) => err);
    await thread.close();
    expect((await pending)?.message).to.match(/closed/);
    let after: Error | undefined;
    await thread.sealEnvelopes(sealBatch(randomCases(2, next), next)).catch((err: Error) => (after = err));
    expect(after?.message).to.match(/closed/);
  });
});
