import { expect } from 'chai';

import { randomNonces } from '../../../src/crypto/index.js';

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
