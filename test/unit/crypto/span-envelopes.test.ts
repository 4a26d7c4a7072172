// Span envelope batches on the sealing thread: items whose texts lie in fetched bytes (records' values
// with their keys and headers between, in one buffer or several) seal into envelopes node:crypto opens,
// under each item's key with its subject as associated data and a fresh nonce each; the buffers that
// come back hold no key, subject or plaintext; a run whose item lies outside it is refused whole.

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { loadPackedSealer } from '../../../src/crypto/crypto-core.js';
import { SealingThread } from '../../../src/crypto/off-thread/sealing-thread.js';
import { packSpanRun, SpanBatch, SpanKey } from '../../../src/crypto/off-thread/span-envelopes.js';
import { prng, testSeed } from './helpers.js';
import { expectEnvelopesOpen as expectOpens, nonceOf, PREFIX, sealKey, type Case } from './envelope-cases.js';

/** A case (its key, its subject as the tail of its associated data, its text as plaintext) and its key as span runs take it. */
interface Item extends Case {
  spanKey: SpanKey;
}

/**
 * `count` items over `subjects` subjects (each its own key), their texts laid out in fetch-like
 * buffers (a new one every `perBuffer` items), with junk between them.
 */
function fetchedItems(count: number, subjects: number, next: (below: number) => number, maxText = 600, perBuffer = count): Item[] {
  const keyed = Array.from({ length: subjects }, (_, s) => {
    const key = sealKey();
    const subject = Buffer.from(`subject-${s}-${randomBytes(6).toString('hex')}`);
    return { spanKey: new SpanKey(key, subject), key, tail: subject };
  });
  const texts = Array.from({ length: count }, () => randomBytes(next(3) === 0 ? 0 : next(maxText)));
  const items: Item[] = [];
  for (let first = 0, b = 0; first < count; first += perBuffer, b++) {
    const chunk = texts.slice(first, first + perBuffer);
    const fetch = randomBytes(chunk.reduce((n, t) => n + t.length + 40, 64));
    let at = 1 + next(20);
    chunk.forEach((text, k) => {
      fetch.set(text, at);
      items.push({ ...keyed[(first + k) % subjects], plaintext: fetch.subarray(at, at + text.length) });
      at += text.length + next(40);
    });
  }
  return items;
}

function spanBatchOf(items: Item[]): SpanBatch {
  const batch = new SpanBatch(items.length, PREFIX);
  for (const item of items) batch.add(item.spanKey, item.plaintext.buffer as ArrayBuffer, item.plaintext);
  return batch;
}

describe('span envelope batches', function () {
  this.timeout(60_000);
  const seed = testSeed();
  let thread: SealingThread;

  beforeEach(() => {
    thread = new SealingThread();
  });

  afterEach(() => thread.close());

  it(`seal into envelopes node:crypto opens, under each item's key and subject, runs cut at buffer changes (seed ${seed})`, async () => {
    const next = prng(seed);
    // several runs in one buffer, items over several buffers (compressed record batches), long texts
    const batches = [fetchedItems(3000, 700, next), fetchedItems(900, 5, next, 3000, 97), fetchedItems(40, 40, next, 20_000, 3)];
    const spans = batches.map(spanBatchOf);
    expect(spans[0].runs.length, 'a large batch in several runs').to.be.greaterThan(2);
    expect(spans[1].runs.length, 'a run per buffer at least').to.be.at.least(Math.ceil(900 / 97));
    const sealed = await Promise.all(spans.map((batch) => thread.sealSpans(batch)));
    batches.forEach((items, b) => expectOpens(items, sealed[b].envelopes, `batch ${b} (seed ${seed})`));
    const nonces = new Set(sealed.flatMap((s) => s.envelopes).map((e) => Buffer.from(nonceOf(e)).toString('hex')));
    expect(nonces.size, 'distinct nonces').to.equal(batches.reduce((n, items) => n + items.length, 0));
    for (const s of sealed) s.release();
  });

  it('leave no key, subject or plaintext in the memory their envelopes keep alive', async () => {
    const next = prng(seed + 1);
    const items = fetchedItems(2500, 300, next, 400);
    const { envelopes, release } = await thread.sealSpans(spanBatchOf(items));
    const memories = [...new Set(envelopes.map((e) => e.buffer))].map((b) => Buffer.from(b));
    expect(memories.length, 'several runs').to.be.greaterThan(2);
    for (const memory of memories) {
      for (const item of items) {
        expect(memory.indexOf(item.key.key), 'a key').to.equal(-1);
        expect(memory.indexOf(item.tail), 'a subject').to.equal(-1);
        if (item.plaintext.length >= 16) expect(memory.indexOf(item.plaintext), 'a plaintext').to.equal(-1);
      }
    }
    expectOpens(items, envelopes, 'after the wipe');
    release();
  });

  it('refuse a run with an item outside its span, its subjects or its key table, sealing nothing', async () => {
    const core = await loadPackedSealer();
    const next = prng(seed + 2);
    const items = fetchedItems(50, 7, next, 200);
    const batch = spanBatchOf(items);
    expect(batch.runs).to.have.length(1);
    const take = (n: number) => new ArrayBuffer(n);
    const { buffer, layout } = packSpanRun(batch, batch.runs[0], take);
    const bytes = new Uint8Array(buffer);
    const out = () => bytes.subarray(layout.outAt, layout.outAt + layout.outBytes);
    expect(() => core.sealSpanRun(bytes, { ...layout, origin: layout.origin + 1 }), 'a text before the span').to.throw(RangeError, /outside its run/);
    expect(() => core.sealSpanRun(bytes, { ...layout, spanBytes: layout.spanBytes - 1, outAt: layout.outAt - 1 }), 'a text past it').to.throw(RangeError, /outside its run/);
    expect(() => core.sealSpanRun(bytes, { ...layout, keyCount: layout.keyCount - 1 }), 'a key past the table').to.throw(RangeError, /outside its run/);
    expect(out().every((b) => b === 0), 'nothing sealed').to.equal(true);
    core.sealSpanRun(bytes, layout);
    expect(out().some((b) => b !== 0), 'the run itself seals').to.equal(true);
  });

  it('take keys whose envelope prefix leaves room for the subject\'s place in the table entry', () => {
    expect(() => new SpanKey({ key: randomBytes(32), prefix: randomBytes(25) }, Buffer.from('s'))).to.throw(RangeError, /at most 24 bytes/);
  });
});
