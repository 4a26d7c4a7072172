// sealWithFreshNonces: a nonce of its own per item, from the CSPRNG, and ciphertexts node:crypto opens.
import { expect } from 'chai';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { aes256Gcm, loadCryptoCore, sealWithFreshNonces } from '../../../src/index.js';

describe('sealWithFreshNonces', () => {
  it('draws a distinct nonce for every item, and node:crypto opens each result under it', async () => {
    const core = await loadCryptoCore();
    const key = randomBytes(32);
    const items = Array.from({ length: 200 }, (_, i) => ({ key, aad: Buffer.from(`aad-${i}`), plaintext: randomBytes(i) }));
    for (const [aead, name] of [[core, 'chacha20-poly1305'], [aes256Gcm, 'aes-256-gcm']] as const) {
      const sealed = sealWithFreshNonces(aead, items);
      expect(new Set(sealed.map((s) => Buffer.from(s.nonce).toString('hex'))).size).to.equal(items.length);
      sealed.forEach(({ nonce, sealed: bytes }, i) => {
        const decipher = createDecipheriv(name, key, nonce, { authTagLength: 16 } as never) as ReturnType<typeof createDecipheriv> & { setAuthTag(tag: Buffer): void; setAAD(aad: Buffer, options?: object): void };
        decipher.setAAD(items[i].aad, { plaintextLength: items[i].plaintext.length });
        decipher.setAuthTag(Buffer.from(bytes.subarray(bytes.length - 16)));
        const plaintext = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]);
        expect(plaintext.equals(items[i].plaintext), `${name} item ${i}`).to.equal(true);
      });
    }
    // and two calls never share a nonce
    const again = sealWithFreshNonces(core, items);
    const first = sealWithFreshNonces(core, items);
    const all = [...again, ...first].map((s) => Buffer.from(s.nonce).toString('hex'));
    expect(new Set(all).size).to.equal(all.length);
  });
});
