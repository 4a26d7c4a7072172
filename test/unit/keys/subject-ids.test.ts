import { expect } from 'chai';

import { subjectId } from '../../../src/keys/subject-ids.js';

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

describe('subjectId', () => {
  it('is the subject bytes as latin1, for every byte value and for Buffers and plain Uint8Arrays alike', () => {
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (let at = 0; at < 256; at += 16) {
      const bytes = every.subarray(at, at + 16);
      expect(subjectId(bytes)).to.equal(latin1(bytes));
      expect(subjectId(Buffer.from(bytes))).to.equal(latin1(bytes));
    }
    expect(subjectId(new Uint8Array(0))).to.equal('');
    const long = Uint8Array.from({ length: 300 }, (_, i) => i % 251);
    expect(subjectId(long)).to.equal(latin1(long)); // (longer than what is interned)
  });

  it('tells apart subjects that differ in one byte or only in length', () => {
    const ids = new Set<string>();
    const base = Buffer.from('user-1234');
    for (let i = 0; i < base.length; i++) {
      const variant = Buffer.from(base);
      variant[i] ^= 1;
      ids.add(subjectId(variant));
    }
    ids.add(subjectId(base));
    ids.add(subjectId(base.subarray(0, 8)));
    ids.add(subjectId(Buffer.concat([base, Buffer.from([0])])));
    expect(ids.size).to.equal(base.length + 3);
  });

  it('stays exact across many subjects (past the interning bound, where the table starts over)', () => {
    for (let i = 0; i < 70_000; i++) {
      const bytes = Buffer.from(`subject-${i}`);
      if (i % 997 === 0) expect(subjectId(bytes)).to.equal(bytes.toString('latin1'));
      else subjectId(bytes);
    }
    for (let i = 0; i < 70_000; i += 331) expect(subjectId(Buffer.from(`subject-${i}`))).to.equal(`subject-${i}`);
  });
});
