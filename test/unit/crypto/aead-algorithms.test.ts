// The algorithm registry (wire-format algorithm byte -> batch cipher) and the AES-256-GCM batch path.

import { randomBytes } from 'node:crypto';

import { expect } from 'chai';

import {
  AES_256_GCM, ALGORITHMS, type AeadRegistry, type OpenItem, CHACHA20_POLY1305, aes256Gcm, algorithmId, algorithmName, loadAeadRegistry,
} from '../../../src/crypto/index.js';
import { referenceOpen, referenceSeal } from './helpers.js';

describe('AEAD algorithms', () => {
  let registry: AeadRegistry;

  before(async () => {
    registry = await loadAeadRegistry();
  });

  it('maps the contract ids and names both ways', () => {
    expect(ALGORITHMS).to.deep.equal([{ id: 1, name: 'chacha20-poly1305' }, { id: 2, name: 'aes-256-gcm' }]);
    expect([CHACHA20_POLY1305, AES_256_GCM]).to.deep.equal([1, 2]);
    expect(algorithmId('chacha20-poly1305')).to.equal(1);
    expect(algorithmId('aes-256-gcm')).to.equal(2);
    expect(algorithmId(2)).to.equal(2);
    expect(algorithmName(1)).to.equal('chacha20-poly1305');
    expect(algorithmName('aes-256-gcm')).to.equal('aes-256-gcm');
  });

  it('refuses unknown ids and names, naming the supported ones', () => {
    for (const bad of [0, 3, 255, 1.5, 'AES-256-GCM', 'chacha20', '', '__proto__', 'toString']) {
      expect(() => algorithmId(bad), String(bad)).to.throw(RangeError, /unknown AEAD algorithm.*0x01 chacha20-poly1305, 0x02 aes-256-gcm/);
      expect(() => registry.get(bad), String(bad)).to.throw(RangeError);
    }
    expect(() => algorithmId(7)).to.throw(/0x07/);
  });

  it('gives the batch cipher for an id or a name', () => {
    expect(registry.get(1).algorithm).to.equal('chacha20-poly1305');
    expect(registry.get('chacha20-poly1305')).to.equal(registry.get(1));
    expect(registry.get(2)).to.equal(aes256Gcm);
    expect(registry.get('aes-256-gcm').algorithm).to.equal('aes-256-gcm');
  });

  for (const [id, name] of [[1, 'chacha20-poly1305'], [2, 'aes-256-gcm']] as const) {
    it(`${name}: batches interoperate with node:crypto, with prefixes and per-item results`, () => {
      const aead = registry.get(id);
      const items = [0, 1, 16, 100, 5000].map((size) => ({
        key: randomBytes(32), nonce: randomBytes(12), aad: randomBytes(size % 7), plaintext: randomBytes(size), prefix: randomBytes(size % 3 === 0 ? 22 : 0),
      }));
      const sealed = aead.sealBatch(items);
      items.forEach((item, i) => {
        const p = item.prefix.length;
        expect(Buffer.compare(sealed[i].subarray(0, p), item.prefix)).to.equal(0);
        expect(Buffer.compare(sealed[i].subarray(p), referenceSeal(name, item.key, item.nonce, item.aad, item.plaintext))).to.equal(0);
      });
      const open: OpenItem[] = items.map((item, i) => ({ ...item, sealed: sealed[i].subarray(item.prefix.length) }));
      open[1] = { ...open[1], aad: Uint8Array.from([...open[1].aad, 0]) }; // forged: one more aad byte
      open[3] = { ...open[3], nonce: open[3].nonce.subarray(0, 8) }; // malformed
      const opened = aead.openBatch(open);
      expect(opened[1]).to.equal(null);
      expect(opened[3]).to.equal(null);
      for (const i of [0, 2, 4]) expect(Buffer.compare(opened[i]!, items[i].plaintext)).to.equal(0);
      // And node:crypto opens the other algorithm's output only under the right algorithm.
      expect(referenceOpen(name === 'aes-256-gcm' ? 'chacha20-poly1305' : 'aes-256-gcm', items[4].key, items[4].nonce, items[4].aad, open[4].sealed)).to.equal(null);
      expect(aead.sealBatch([])).to.deep.equal([]);
      expect(aead.openBatch([])).to.deep.equal([]);
    });
  }

  it('aes-256-gcm checks seal arguments like the core', () => {
    const good = { key: randomBytes(32), nonce: randomBytes(12), aad: new Uint8Array(0), plaintext: new Uint8Array(3) };
    expect(() => aes256Gcm.sealBatch([{ ...good, key: randomBytes(16) }])).to.throw(RangeError, /key must be 32 bytes/);
    expect(() => aes256Gcm.sealBatch([{ ...good, nonce: randomBytes(16) }])).to.throw(RangeError, /nonce must be 12 bytes/);
    expect(() => aes256Gcm.sealBatch([{ ...good, aad: 'x' as unknown as Uint8Array }])).to.throw(TypeError, /aad/);
  });
});
