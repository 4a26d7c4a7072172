// The batch interface of the WebAssembly core: per-item results, prefixes, argument checks, memory
// growth and reuse, large records, results that never alias the module's reused memory.

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import { type CryptoCore, type OpenItem, type SealItem, loadCryptoCore } from '../../../src/crypto/index.js';
import { referenceOpen, referenceSeal } from './helpers.js';

const MiB = 1024 * 1024;

function randomItem(size: number, aad = 20): SealItem {
  return { key: randomBytes(32), nonce: randomBytes(12), aad: randomBytes(aad), plaintext: randomBytes(size) };
}

describe('CryptoCore (WebAssembly ChaCha20-Poly1305)', function () {
  this.timeout(30_000);
  let core: CryptoCore;

  before(async () => {
    core = await loadCryptoCore();
  });

  it('names its algorithm', () => {
    expect(core.algorithm).to.equal('chacha20-poly1305');
  });

  it('returns [] for empty batches', () => {
    expect(core.sealBatch([])).to.deep.equal([]);
    expect(core.openBatch([])).to.deep.equal([]);
  });

  it('gives each item of a batch mixing valid and forged records its own result', () => {
    const items = Array.from({ length: 40 }, (_, i) => randomItem(i * 37));
    const sealed = core.sealBatch(items);
    type Forgery = (item: OpenItem) => OpenItem;
    const forgeries: Forgery[] = [
      (it) => ({ ...it, sealed: Uint8Array.from(it.sealed, (b, j) => (j === it.sealed.length - 1 ? b ^ 0x80 : b)) }),
      (it) => ({ ...it, key: randomBytes(32) }),
      (it) => ({ ...it, nonce: randomBytes(12) }),
      (it) => ({ ...it, aad: randomBytes(20) }),
      (it) => ({ ...it, sealed: it.sealed.subarray(0, 15) }), // malformed: shorter than a tag
      (it) => ({ ...it, nonce: it.nonce.subarray(0, 11) }), // malformed: wrong nonce length
      (it) => ({ ...it, key: it.key.subarray(0, 16) }), // malformed: wrong key length
    ];
    const expectForged = items.map((_, i) => i % 3 === 1);
    const open = items.map((item, i): OpenItem => {
      const honest = { key: item.key, nonce: item.nonce, aad: item.aad, sealed: sealed[i] };
      return expectForged[i] ? forgeries[i % forgeries.length](honest) : honest;
    });
    const results = core.openBatch(open);
    expect(results).to.have.length(items.length);
    results.forEach((r, i) => {
      if (expectForged[i]) expect(r, `item ${i}`).to.equal(null);
      else expect(Buffer.compare(r!, items[i].plaintext), `item ${i}`).to.equal(0);
    });
  });

  it('places a prefix before ciphertext || tag, unencrypted and outside the tag', () => {
    const items = [randomItem(0), randomItem(100), randomItem(1000)];
    const prefixes = [randomBytes(22), new Uint8Array(0), randomBytes(5)];
    const withPrefix = core.sealBatch(items.map((item, i) => ({ ...item, prefix: prefixes[i] })));
    items.forEach((item, i) => {
      const out = withPrefix[i];
      const p = prefixes[i].length;
      expect(out.length).to.equal(p + item.plaintext.length + 16);
      expect(Buffer.compare(out.subarray(0, p), prefixes[i])).to.equal(0);
      const opened = referenceOpen('chacha20-poly1305', item.key, item.nonce, item.aad, out.subarray(p));
      expect(Buffer.compare(opened!, item.plaintext)).to.equal(0);
    });
  });

  it('checks seal arguments with TypeError and RangeError', () => {
    const good = randomItem(10);
    expect(() => core.sealBatch([{ ...good, key: randomBytes(31) }])).to.throw(RangeError, /key must be 32 bytes/);
    expect(() => core.sealBatch([{ ...good, nonce: randomBytes(24) }])).to.throw(RangeError, /nonce must be 12 bytes/);
    expect(() => core.sealBatch([good, { ...good, key: 'k' as unknown as Uint8Array }])).to.throw(TypeError, /item 1: key/);
    expect(() => core.sealBatch([{ ...good, plaintext: undefined as unknown as Uint8Array }])).to.throw(TypeError, /plaintext/);
    expect(() => core.sealBatch([{ ...good, prefix: [1, 2] as unknown as Uint8Array }])).to.throw(TypeError, /prefix/);
    expect(() => core.openBatch([{ ...good, sealed: null as unknown as Uint8Array }])).to.throw(TypeError, /sealed/);
  });

  it('returns results that do not alias its reused memory', () => {
    const items = [randomItem(300), randomItem(70)];
    const first = core.sealBatch(items);
    const copies = first.map((r) => Uint8Array.from(r));
    const opened = core.openBatch(items.map((item, i) => ({ ...item, sealed: first[i] })));
    // enough later batches to fill several of the slabs small results are copied into
    for (let i = 0; i < 30; i++) core.sealBatch([randomItem(5000), randomItem(300)]);
    first.forEach((r, i) => expect(Buffer.compare(r, copies[i])).to.equal(0));
    opened.forEach((r, i) => expect(Buffer.compare(r!, items[i].plaintext)).to.equal(0));
    // The plaintext inputs are not modified either (sealing happens on a copy inside the module).
    expect(Buffer.compare(referenceSeal('chacha20-poly1305', items[0].key, items[0].nonce, items[0].aad, items[0].plaintext), first[0])).to.equal(0);
  });

  it('leaves no key, nonce, aad or plaintext in the module memory after a batch', async () => {
    const fresh = await loadCryptoCore();
    // Reaching into the instance is the only way to look at its memory; this is what an attacker
    // reading the process memory would see between batches.
    const memory = (): Buffer => Buffer.from((fresh as unknown as { core: { memory: { buffer: ArrayBuffer } } }).core.memory.buffer);
    const items = [randomItem(1000, 40), randomItem(100, 40), randomItem(5, 40)];
    const sealed = fresh.sealBatch(items);
    const opened = fresh.openBatch(items.map((item, i) => ({ ...item, sealed: sealed[i] })));
    expect(opened.every((o) => o !== null)).to.equal(true);
    const heap = memory();
    items.forEach((item, i) => {
      for (const [what, secret] of [['key', item.key], ['nonce', item.nonce], ['aad', item.aad], ['plaintext', item.plaintext]] as const) {
        expect(heap.indexOf(Buffer.from(secret)), `item ${i} ${what}`).to.equal(-1);
      }
    });
  });

  it('round trips a 10 MB record, interoperably', () => {
    const item = randomItem(10 * 1000 * 1000, 30);
    const [sealed] = core.sealBatch([item]);
    expect(Buffer.compare(referenceSeal('chacha20-poly1305', item.key, item.nonce, item.aad, item.plaintext), sealed)).to.equal(0);
    const [opened] = core.openBatch([{ ...item, sealed }]);
    expect(Buffer.compare(opened!, item.plaintext)).to.equal(0);
    expect(core.memoryBytes).to.be.at.least(10 * 1000 * 1000);
  });

  it('reuses its memory: no growth over repeated batches of one size', async () => {
    const fresh = await loadCryptoCore();
    const items = Array.from({ length: 500 }, () => randomItem(2000));
    fresh.sealBatch(items);
    const grown = fresh.memoryBytes;
    expect(grown).to.be.at.least(500 * 2000);
    for (let i = 0; i < 50; i++) {
      const sealed = fresh.sealBatch(items);
      fresh.openBatch(items.map((item, j) => ({ ...item, sealed: sealed[j] })));
    }
    expect(fresh.memoryBytes).to.equal(grown);
    // A smaller batch does not grow it either.
    fresh.sealBatch(items.slice(0, 10));
    expect(fresh.memoryBytes).to.equal(grown);
  });

  it('splits a very large batch into calls so that memory stays near 32 MiB', async () => {
    const fresh = await loadCryptoCore();
    const items = Array.from({ length: 48 }, () => randomItem(MiB));
    const sealed = fresh.sealBatch(items);
    expect(fresh.memoryBytes).to.be.below(40 * MiB);
    const opened = fresh.openBatch(items.map((item, i) => ({ ...item, sealed: sealed[i] })));
    items.forEach((item, i) => {
      expect(Buffer.compare(sealed[i], referenceSeal('chacha20-poly1305', item.key, item.nonce, item.aad, item.plaintext)), `item ${i}`).to.equal(0);
      expect(Buffer.compare(opened[i]!, item.plaintext), `item ${i}`).to.equal(0);
    });
    expect(fresh.memoryBytes).to.be.below(40 * MiB);
  });
});
