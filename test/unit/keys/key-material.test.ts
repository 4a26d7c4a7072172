// The pool that new data keys, key ids and wrapping nonces come from: fresh CSPRNG bytes, each handed
// out once, none left behind in the pool, refilled when it runs short.
import { expect } from 'chai';
import { KeyMaterialPool } from '../../../src/keys/key-material.js';

/** The pool's own buffer, to see what it keeps. */
const poolBytes = (pool: KeyMaterialPool) => (pool as unknown as { pool: Uint8Array }).pool;

describe('key material pool', () => {
  it('hands out each byte once, in arrays of their own, and keeps no copy of them', () => {
    const pool = new KeyMaterialPool(256);
    const keys = Array.from({ length: 6 }, () => pool.take(40)); // 240 of the pool's 256 bytes
    const hex = keys.map((k) => Buffer.from(k).toString('hex'));
    expect(new Set(hex).size, 'distinct').to.equal(keys.length);
    expect(keys.every((k) => k.length === 40 && k.buffer !== poolBytes(pool).buffer), 'arrays of their own').to.equal(true);
    expect(keys.every((k) => k.some((b) => b !== 0)), 'random bytes').to.equal(true);
    expect(poolBytes(pool).subarray(0, 240).every((b) => b === 0), 'taken bytes zeroed in the pool').to.equal(true);
    const before = Buffer.from(keys[0]);
    pool.take(12); // the rest of the pool
    expect(Buffer.compare(keys[0], before), 'taking more leaves earlier arrays alone').to.equal(0);
  });

  it('refills from the CSPRNG when what is left is too short, and never hands out the same bytes twice', () => {
    const pool = new KeyMaterialPool(100);
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const taken = Buffer.from(pool.take(32)).toString('hex');
      expect(seen.has(taken), `take ${i}`).to.equal(false);
      seen.add(taken);
    }
  });

  it('refuses sizes it cannot hand out', () => {
    const pool = new KeyMaterialPool(64);
    expect(() => pool.take(65)).to.throw(RangeError, /65 bytes from a pool of 64/);
    expect(() => pool.take(-1)).to.throw(RangeError);
    expect(() => pool.take(1.5)).to.throw(RangeError);
    expect(pool.take(0)).to.have.length(0);
    expect(() => new KeyMaterialPool(0)).to.throw(RangeError);
  });
});
