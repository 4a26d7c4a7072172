// Every case of the Wycheproof AEAD files (test/vectors/wycheproof). Valid cases must seal to ct || tag
// and open to msg; invalid ones must be refused. Sizes the API does not take (nonces other than 12
// bytes, AES keys other than 256 bits) are refused by the host: seal throws a RangeError, open gives
// null. Each file is run as one seal batch and one open batch, so this also checks that every item of a
// batch gets its own result.

import { expect } from 'chai';

import type { BatchAead } from '../../../src/crypto/index.js';
import { aes256Gcm, loadCryptoCore } from '../../../src/crypto/index.js';
import { hex, readVectors, toHex } from './helpers.js';

interface WycheproofCase {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface WycheproofFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: { keySize: number; ivSize: number; tagSize: number; tests: WycheproofCase[] }[];
}

interface Tally { total: number; sealed: number; opened: number; refusedBySize: number; rejected: number }

function runFile(aead: BatchAead, file: WycheproofFile): Tally {
  const tally: Tally = { total: 0, sealed: 0, opened: 0, refusedBySize: 0, rejected: 0 };
  const supported = file.testGroups.flatMap((g) =>
    g.tests.map((t) => ({ t, fits: g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128 })));
  tally.total = supported.length;

  // Seal every valid case of a supported size in one batch.
  const valid = supported.filter(({ t, fits }) => fits && t.result === 'valid').map(({ t }) => t);
  const sealed = aead.sealBatch(valid.map((t) => ({ key: hex(t.key), nonce: hex(t.iv), aad: hex(t.aad), plaintext: hex(t.msg) })));
  valid.forEach((t, i) => {
    expect(toHex(sealed[i]), `tcId ${t.tcId} seal`).to.equal(t.ct + t.tag);
    tally.sealed++;
  });

  // Open every case in one batch.
  const opened = aead.openBatch(supported.map(({ t }) => ({ key: hex(t.key), nonce: hex(t.iv), aad: hex(t.aad), sealed: hex(t.ct + t.tag) })));
  supported.forEach(({ t, fits }, i) => {
    expect(t.result, `tcId ${t.tcId}`).to.not.equal('acceptable');
    if (fits && t.result === 'valid') {
      expect(opened[i], `tcId ${t.tcId} open`).to.not.equal(null);
      expect(toHex(opened[i]!), `tcId ${t.tcId} open`).to.equal(t.msg);
      tally.opened++;
    } else {
      expect(opened[i], `tcId ${t.tcId} (${t.comment}) must be refused`).to.equal(null);
      if (fits) tally.rejected++;
    }
    if (!fits) {
      const item = { key: hex(t.key), nonce: hex(t.iv), aad: hex(t.aad), plaintext: hex(t.msg) };
      expect(() => aead.sealBatch([item]), `tcId ${t.tcId} seal`).to.throw(RangeError);
      tally.refusedBySize++;
    }
  });
  return tally;
}

describe('Wycheproof', () => {
  it('ChaCha20-Poly1305: all 325 cases of chacha20_poly1305_test.json', async () => {
    const file = readVectors<WycheproofFile>('wycheproof/chacha20_poly1305_test.json');
    expect(file.algorithm).to.equal('CHACHA20-POLY1305');
    const tally = runFile(await loadCryptoCore(), file);
    expect(tally.total).to.equal(file.numberOfTests).and.to.equal(325);
    expect(tally.sealed + tally.rejected + tally.refusedBySize).to.equal(file.numberOfTests);
    expect(tally.opened).to.equal(tally.sealed);
    // The file's own mix: 256 valid, 60 modified tags, 9 nonces of the wrong size.
    expect(tally).to.deep.include({ sealed: 256, rejected: 60, refusedBySize: 9 });
  });

  it('AES-256-GCM: all 316 cases of aes_gcm_test.json (66 with a 256-bit key and 96-bit nonce)', () => {
    const file = readVectors<WycheproofFile>('wycheproof/aes_gcm_test.json');
    expect(file.algorithm).to.equal('AES-GCM');
    const tally = runFile(aes256Gcm, file);
    expect(tally.total).to.equal(file.numberOfTests).and.to.equal(316);
    expect(tally.sealed + tally.rejected + tally.refusedBySize).to.equal(file.numberOfTests);
    expect(tally.opened).to.equal(tally.sealed);
    expect(tally).to.deep.include({ sealed: 39, rejected: 27, refusedBySize: 250 });
  });
});
