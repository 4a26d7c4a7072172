import { expect } from 'chai';

import { NoncePool, randomNonces } from '../../../src/crypto/index.js';

describe('randomNonces', () => {
  it('draws distinct 12-byte nonces as views of one fresh buffer', () => {
    const nonces = randomNonces(1000);
    expect(nonces).to.have.length(1000);
    expect(nonces.every((n) => n.length === 12 && n.buffer === nonces[0].buffer)).to.equal(true);
    expect(new Set(nonces.map((n) => Buffer.from(n).toString('hex'))).size).to.equal(1000);
    expect(randomNonces(1)[0].buffer).to.not.equal(nonces[0].buffer);
  });

  it('takes other sizes and refuses bad counts', () => {
    expect(randomNonces(3, 24).map((n) => n.length)).to.deep.equal([24, 24, 24]);
    expect(randomNonces(0)).to.deep.equal([]);
    expect(() => randomNonces(-1)).to.throw(RangeError);
    expect(() => randomNonces(1.5)).to.throw(RangeError);
    expect(() => randomNonces(2, 0)).to.throw(RangeError);
  });
});

describe('NoncePool', () => {
  it('writes 12 bytes at the offset and nothing around them', () => {
    const target = new Uint8Array(40).fill(0xaa);
    new NoncePool().take(target, 10);
    expect([...target.subarray(0, 10), ...target.subarray(22)].every((b) => b === 0xaa)).to.equal(true);
    expect(target.subarray(10, 22).every((b) => b === 0xaa)).to.equal(false); // (fails with odds 2^-96)
  });

  it('hands out distinct nonces across many refills, and two pools differ', () => {
    const pool = new NoncePool(100); // refilled every 8 nonces
    const seen = new Set<string>();
    const target = new Uint8Array(12);
    for (let i = 0; i < 5000; i++) {
      pool.take(target, 0);
      seen.add(Buffer.from(target).toString('hex'));
    }
    expect(seen.size).to.equal(5000);
    new NoncePool(100).take(target, 0);
    expect(seen.has(Buffer.from(target).toString('hex'))).to.equal(false);
  });

  it('fills a batch of nonces at once: fresh bytes across refills, nothing written around them', () => {
    const pool = new NoncePool(100);
    const target = new Uint8Array(12 * 50 + 8).fill(0xaa);
    pool.fill(target, 4, 12 * 50); // spans several refills of the 100-byte pool
    expect([...target.subarray(0, 4), ...target.subarray(4 + 600)].every((b) => b === 0xaa)).to.equal(true);
    const nonces = new Set<string>();
    for (let i = 0; i < 50; i++) nonces.add(Buffer.from(target.subarray(4 + 12 * i, 16 + 12 * i)).toString('hex'));
    pool.take(target, 4);
    nonces.add(Buffer.from(target.subarray(4, 16)).toString('hex'));
    expect(nonces.size).to.equal(51);
    expect(() => pool.fill(target, 600, 12)).to.throw(RangeError, /do not fit/);
  });

  it('refuses a pool smaller than one nonce, and a nonce that does not fit its target', () => {
    expect(() => new NoncePool(11)).to.throw(RangeError);
    expect(() => new NoncePool().take(new Uint8Array(20), 9)).to.throw(RangeError, /does not fit/);
    expect(() => new NoncePool().take(new Uint8Array(20), -1)).to.throw(RangeError, /does not fit/);
  });
});
