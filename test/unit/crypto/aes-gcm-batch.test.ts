// The batch AES-256-GCM sealer (AES blocks from one ECB call, tags from the wasm core's GHASH) against
// every Wycheproof case it takes and against node:crypto's GCM on random items of every size.
import { expect } from 'chai';
import { createCipheriv, randomBytes } from 'node:crypto';
import { AesGcmBatchSealer, type GcmSealItem } from '../../../src/crypto/aes-gcm-batch.js';
import { hex, prng, readVectors, referenceSeal, testSeed, toHex } from './helpers.js';

interface WycheproofFile {
  testGroups: { keySize: number; ivSize: number; tagSize: number; tests: { tcId: number; key: string; iv: string; aad: string; msg: string; ct: string; tag: string; result: string }[] }[];
}

describe('batch AES-256-GCM sealing', () => {
  it('seals every Wycheproof case of a 256-bit key, 96-bit nonce and 128-bit tag to its ct || tag, each key\'s cases in one batch; none of the invalid ones', () => {
    const file = readVectors<WycheproofFile>('wycheproof/aes_gcm_test.json');
    const cases = file.testGroups.filter((g) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128).flatMap((g) => g.tests);
    const byKey = new Map<string, typeof cases>();
    for (const t of cases) byKey.set(t.key, [...(byKey.get(t.key) ?? []), t]);
    let valid = 0;
    let invalid = 0;
    for (const [key, tests] of byKey) {
      const sealed = new AesGcmBatchSealer(hex(key)).seal(tests.map((t) => ({ nonce: hex(t.iv), aad: hex(t.aad), plaintext: hex(t.msg) })));
      tests.forEach((t, i) => {
        if (t.result === 'valid') {
          expect(toHex(sealed[i]), `tcId ${t.tcId}`).to.equal(t.ct + t.tag);
          valid++;
        } else {
          expect(toHex(sealed[i]), `tcId ${t.tcId} (a modified ciphertext or tag)`).to.not.equal(t.ct + t.tag);
          invalid++;
        }
      });
    }
    expect(valid).to.be.greaterThan(30);
    expect(invalid).to.be.greaterThan(10);
  });

  it('gives node:crypto\'s bytes for random items of every size (empty, ragged and whole blocks), batch after batch under one key', () => {
    const seed = testSeed();
    const below = prng(seed);
    for (let round = 0; round < 4; round++) {
      const key = randomBytes(32);
      const sealer = new AesGcmBatchSealer(key);
      for (let batch = 0; batch < 3; batch++) {
        const items: GcmSealItem[] = Array.from({ length: 1 + below(400) }, () => ({ nonce: randomBytes(12), aad: randomBytes(below(100)), plaintext: randomBytes(below(300)) }));
        const sealed = sealer.seal(items);
        items.forEach(({ nonce, aad, plaintext }, i) => {
          expect(toHex(sealed[i]), `seed ${seed}, round ${round}, batch ${batch}, item ${i} (aad ${aad.length} B, text ${plaintext.length} B)`).to.equal(toHex(referenceSeal('aes-256-gcm', key, nonce, aad, plaintext)));
        });
      }
    }
  });

  it('leaves neither the hash key nor any keystream or plaintext in the module memory after a batch', () => {
    const key = randomBytes(32);
    const sealer = new AesGcmBatchSealer(key);
    const items = Array.from({ length: 20 }, () => ({ nonce: randomBytes(12), aad: randomBytes(40), plaintext: randomBytes(32) }));
    sealer.seal(items);
    // (reaching into the instance: what an attacker reading the process memory would see between batches)
    const memory = Buffer.from((sealer as unknown as { core: { memory: { buffer: ArrayBuffer } } }).core.memory.buffer);
    const ecb = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const block = (nonce: Uint8Array, counter: number) => ecb.update(Buffer.concat([nonce, Buffer.from([0, 0, 0, counter])]));
    expect(memory.indexOf(ecb.update(Buffer.alloc(16))), 'hash key').to.equal(-1);
    items.forEach(({ nonce, plaintext }, i) => {
      for (const counter of [1, 2, 3]) expect(memory.indexOf(block(nonce, counter)), `item ${i} block ${counter}`).to.equal(-1);
      expect(memory.indexOf(Buffer.from(plaintext)), `item ${i} plaintext`).to.equal(-1);
    });
  });

  it('returns results that no later batch changes, and refuses a key or nonce of another size', () => {
    const key = randomBytes(32);
    const sealer = new AesGcmBatchSealer(key);
    const item = { nonce: randomBytes(12), aad: randomBytes(30), plaintext: randomBytes(32) };
    const [first] = sealer.seal([item]);
    const copy = toHex(first);
    sealer.seal(Array.from({ length: 100 }, () => ({ nonce: randomBytes(12), aad: randomBytes(30), plaintext: randomBytes(32) })));
    expect(toHex(first)).to.equal(copy);
    expect(copy).to.equal(toHex(referenceSeal('aes-256-gcm', key, item.nonce, item.aad, item.plaintext)));
    expect(() => new AesGcmBatchSealer(randomBytes(16))).to.throw(RangeError);
    expect(() => sealer.seal([{ ...item, nonce: randomBytes(16) }])).to.throw(RangeError);
  });
});
