// Crypto micro-benchmark (`npm run bench:crypto`): sealing batches of 1000 records with the
// WebAssembly core against node:crypto per record and @chainsafe/as-chacha20poly1305, at 64 B to 16 KiB.
// Prints one table and the target ratios, all from this one run.

import { createCipheriv, randomBytes } from 'node:crypto';

import { ChaCha20Poly1305, newInstance } from '@chainsafe/as-chacha20poly1305';
import Benchmark from 'benchmark';

import { type CryptoCore, type SealItem, loadCryptoCore, randomNonces } from '../src/crypto/index.js';

const SIZES = [64, 256, 1024, 16384];
const BATCH = 1000;
const AAD_BYTES = 30; // a 22-byte envelope header and a short subject id (chainsafe takes at most 32)
const OPTIONS: Benchmark.Options = { minSamples: 8, maxTime: 1.5, initCount: 2 };

interface Row { size: number; name: string; usPerMessage: number; rme: number }

type Contender = (plaintexts: Uint8Array[], key: Uint8Array, aad: Uint8Array) => () => void;

function contenders(core: CryptoCore): [string, Contender][] {
  const chainsafe = new ChaCha20Poly1305(newInstance());
  const nodePerMessage = (cipher: 'chacha20-poly1305' | 'aes-256-gcm', nonceOf: (i: number, batch: Uint8Array[]) => Uint8Array,
    batchNonces: boolean): Contender => (plaintexts, key, aad) => () => {
    const nonces = batchNonces ? randomNonces(plaintexts.length) : [];
    for (let i = 0; i < plaintexts.length; i++) {
      const c = createCipheriv(cipher as 'aes-256-gcm', key, nonceOf(i, nonces), { authTagLength: 16 });
      c.setAAD(aad);
      c.update(plaintexts[i]);
      c.final();
      c.getAuthTag();
    }
  };
  return [
    ['core sealBatch (wasm, + randomNonces)', (plaintexts, key, aad) => () => {
      const nonces = randomNonces(plaintexts.length);
      const items: SealItem[] = new Array(plaintexts.length);
      for (let i = 0; i < plaintexts.length; i++) items[i] = { key, nonce: nonces[i], aad, plaintext: plaintexts[i] };
      core.sealBatch(items);
    }],
    ['node chacha20-poly1305 per msg', nodePerMessage('chacha20-poly1305', () => randomBytes(12), false)],
    ['node chacha20-poly1305, batch nonces', nodePerMessage('chacha20-poly1305', (i, n) => n[i], true)],
    ['node aes-256-gcm per msg', nodePerMessage('aes-256-gcm', () => randomBytes(12), false)],
    ['@chainsafe/as-chacha20poly1305', (plaintexts, key, aad) => () => {
      const nonces = randomNonces(plaintexts.length);
      for (let i = 0; i < plaintexts.length; i++) chainsafe.seal(key, nonces[i], plaintexts[i], aad);
    }],
  ];
}

/** Refuses to time a broken build: the core's output must open under node:crypto. */
async function sanityCheck(core: CryptoCore): Promise<void> {
  const { createDecipheriv } = await import('node:crypto');
  for (const size of [0, 100, 16384]) {
    const item = { key: randomBytes(32), nonce: randomBytes(12), aad: randomBytes(AAD_BYTES), plaintext: randomBytes(size) };
    const [sealed] = core.sealBatch([item]);
    const d = createDecipheriv('chacha20-poly1305', item.key, item.nonce, { authTagLength: 16 });
    d.setAAD(item.aad, { plaintextLength: size });
    d.setAuthTag(sealed.subarray(size));
    const plain = Buffer.concat([d.update(sealed.subarray(0, size)), d.final()]);
    if (!plain.equals(item.plaintext)) throw new Error(`sanity check failed at ${size} bytes`);
  }
}

function fmt(n: number, width: number, digits: number): string {
  return n.toFixed(digits).padStart(width);
}

async function main(): Promise<void> {
  const core = await loadCryptoCore();
  await sanityCheck(core);
  const started = Date.now();
  const rows: Row[] = [];
  const list = contenders(core);
  for (const size of SIZES) {
    const key = randomBytes(32);
    const aad = randomBytes(AAD_BYTES);
    const plaintexts = Array.from({ length: BATCH }, () => new Uint8Array(randomBytes(size)));
    for (const [name, make] of list) {
      const bench = new Benchmark(`${name} @ ${size}`, make(plaintexts, key, aad), OPTIONS).run();
      if (bench.error) throw bench.error;
      rows.push({ size, name, usPerMessage: (bench.stats.mean * 1e6) / BATCH, rme: bench.stats.rme });
      process.stderr.write('.');
    }
  }
  process.stderr.write('\n');

  console.log(`Sealing batches of ${BATCH} records, ${AAD_BYTES}-byte aad (node ${process.version}, ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  console.log(`${'size'.padEnd(8)}${'implementation'.padEnd(40)}${'us/msg'.padStart(10)}${'MB/s'.padStart(9)}${'±%'.padStart(7)}`);
  for (const r of rows) {
    console.log(`${`${r.size} B`.padEnd(8)}${r.name.padEnd(40)}${fmt(r.usPerMessage, 10, 3)}${fmt(r.size / r.usPerMessage, 9, 0)}${fmt(r.rme, 7, 1)}`);
  }

  const at = (size: number, prefix: string): Row => rows.find((r) => r.size === size && r.name.startsWith(prefix))!;
  const core256 = at(256, 'core');
  const node256 = at(256, 'node chacha20-poly1305 per msg');
  const core16k = at(16384, 'core');
  const node16k = at(16384, 'node chacha20-poly1305 per msg');
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  const ratio256 = node256.usPerMessage / core256.usPerMessage;
  const ratio16k = node16k.usPerMessage / core16k.usPerMessage; // same bytes, so time ratio = throughput ratio
  console.log('\nTargets');
  console.log(`  256 B: core is ${ratio256.toFixed(1)}x faster than node:crypto chacha20-poly1305 per message (target >= 10x): ${verdict(ratio256 >= 10)}`);
  console.log(`  16 KiB: core throughput / node:crypto chacha20-poly1305 throughput = ${ratio16k.toFixed(2)} (target >= 0.5): ${verdict(ratio16k >= 0.5)}`);
  for (const size of SIZES) {
    const r = at(size, '@chainsafe').usPerMessage / at(size, 'core').usPerMessage;
    console.log(`  ${`${size} B`.padEnd(7)} core vs @chainsafe/as-chacha20poly1305: ${r.toFixed(1)}x (target > 1): ${verdict(r > 1)}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
