// Published test vectors of RFC 8439 (test/vectors/rfc8439.json): the primitives on their own through
// the core's test exports, and the AEAD through the batch interface.

import { expect } from 'chai';

import { type CorePrimitives, loadCorePrimitives } from '../../../src/crypto/core-primitives.js';
import { type CryptoCore, loadCryptoCore } from '../../../src/crypto/index.js';
import { hex, readVectors, toHex } from './helpers.js';

interface Vectors {
  chacha20Block: { name: string; key: string; nonce: string; counter: number; block: string }[];
  chacha20Encrypt: { name: string; key: string; nonce: string; counter: number; plaintext: string; ciphertext: string }[];
  poly1305: { name: string; key: string; message: string; tag: string }[];
  poly1305KeyGen: { name: string; key: string; nonce: string; oneTimeKey: string }[];
  aead: { name: string; key: string; nonce: string; aad: string; plaintext: string; ciphertext: string; tag: string }[];
}

const vectors = readVectors<Vectors>('rfc8439.json');

describe('RFC 8439 test vectors', () => {
  let primitives: CorePrimitives;
  let core: CryptoCore;

  before(async () => {
    primitives = await loadCorePrimitives();
    core = await loadCryptoCore();
  });

  it('has every vector group of the file', () => {
    expect(vectors.chacha20Block).to.have.length(6);
    expect(vectors.chacha20Encrypt).to.have.length(4);
    expect(vectors.poly1305).to.have.length(12);
    expect(vectors.poly1305KeyGen).to.have.length(4);
    expect(vectors.aead).to.have.length(2);
  });

  describe('ChaCha20 block function (2.3.2, A.1)', () => {
    for (const v of vectors.chacha20Block) {
      it(v.name, () => {
        expect(toHex(primitives.chacha20Block(hex(v.key), hex(v.nonce), v.counter))).to.equal(v.block);
      });
    }
  });

  describe('ChaCha20 encryption (2.4.2, A.2)', () => {
    for (const v of vectors.chacha20Encrypt) {
      it(v.name, () => {
        const ct = primitives.chacha20(hex(v.key), hex(v.nonce), v.counter, hex(v.plaintext));
        expect(toHex(ct)).to.equal(v.ciphertext);
        expect(toHex(primitives.chacha20(hex(v.key), hex(v.nonce), v.counter, ct))).to.equal(v.plaintext);
      });
    }
  });

  describe('Poly1305 (2.5.2, A.3)', () => {
    for (const v of vectors.poly1305) {
      it(v.name, () => {
        expect(toHex(primitives.poly1305(hex(v.key), hex(v.message)))).to.equal(v.tag);
      });
    }
  });

  describe('Poly1305 key generation (2.6.2, A.4)', () => {
    for (const v of vectors.poly1305KeyGen) {
      it(v.name, () => {
        expect(toHex(primitives.chacha20Block(hex(v.key), hex(v.nonce), 0).subarray(0, 32))).to.equal(v.oneTimeKey);
      });
    }
  });

  describe('AEAD (2.8.2 encryption, A.5 decryption)', () => {
    for (const v of vectors.aead) {
      it(`${v.name} seals to the published ciphertext and tag`, () => {
        const [sealed] = core.sealBatch([{ key: hex(v.key), nonce: hex(v.nonce), aad: hex(v.aad), plaintext: hex(v.plaintext) }]);
        expect(toHex(sealed)).to.equal(v.ciphertext + v.tag);
      });
      it(`${v.name} opens to the published plaintext`, () => {
        const [opened] = core.openBatch([{ key: hex(v.key), nonce: hex(v.nonce), aad: hex(v.aad), sealed: hex(v.ciphertext + v.tag) }]);
        expect(opened).to.not.equal(null);
        expect(toHex(opened!)).to.equal(v.plaintext);
      });
    }
  });
});
