// Master-key benchmark (`npm run bench:keys`): new-subject key creation (Keyring.newDataKey + wrap, the
// encryptor's cost per new subject; with the local provider also a batch's, wrapAll) and unwrap (the decryptor's per key-cache miss), with the local
// provider (node:crypto) and the pkcs11 provider (a SoftHSM token in a temp folder, same key material),
// in one run. The machine is noisy: read the ratios, which are taken within this one run.
import { randomBytes } from 'node:crypto';
import Benchmark from 'benchmark';
import { AES_256_GCM } from '../src/crypto/aead-algorithms.js';
import { Keyring } from '../src/keys/keyring.js';
import { LocalMasterKey } from '../src/keys/local-master-key.js';
import type { MasterKeySource } from '../src/keys/master-key-cipher.js';
import { openPkcs11MasterKeys } from '../src/keys/pkcs11-master-keys.js';
import { SoftHsm, softHsmMissing } from '../test/support/softhsm.js';

const OPTIONS: Benchmark.Options = { minSamples: 10, maxTime: 2, initCount: 50 };
const PREFIX = 'kafka-shredder-master-key-';
const VALUES = 1024; // distinct wrapped values cycled through by the unwrap runs
const BATCH = 1000; // keys per wrapAll call
const subjects = Array.from({ length: VALUES }, (_, i) => Buffer.from(`customer-${String(i).padStart(8, '0')}`));

interface Row { provider: string; operation: string; perSecond: number; rme: number }

function measure(provider: string, operation: string, body: () => void): Row {
  for (let i = 0; i < 200; i++) body(); // warm-up (JIT, the HSM session)
  const bench = new Benchmark(`${provider} ${operation}`, body, OPTIONS).run();
  if (bench.error) throw bench.error;
  process.stderr.write('.');
  return { provider, operation, perSecond: bench.hz, rme: bench.stats.rme };
}

function rowsFor(provider: string, ring: Keyring): Row[] {
  let n = 0;
  const create = measure(provider, 'new subject key (newDataKey + wrap)', () => {
    ring.wrap(subjects[n++ % VALUES], Keyring.newDataKey(AES_256_GCM));
  });
  const values = subjects.map((s) => ring.wrap(s, Keyring.newDataKey(AES_256_GCM)));
  let m = 0;
  const unwrap = measure(provider, 'unwrap', () => {
    const i = m++ % VALUES;
    ring.unwrap(subjects[i], values[i]);
  });
  const rows = [create, unwrap];
  if (provider === 'local') {
    // a batch of new subjects, as the encryptor keys a backlog's batch (Keyring.wrapAll: one pass of AES blocks and tags)
    const batchSubjects = subjects.slice(0, BATCH);
    const batch = measure(provider, `new subject keys, ${BATCH} a call (wrapAll)`, () => {
      ring.wrapAll(batchSubjects, batchSubjects.map(() => Keyring.newDataKey(AES_256_GCM)));
    });
    rows.push({ ...batch, perSecond: batch.perSecond * BATCH });
  }
  return rows;
}

async function main(): Promise<void> {
  const material = randomBytes(32);
  const rows = rowsFor('local', new Keyring([new LocalMasterKey(material, 1)], 1));

  const missing = softHsmMissing();
  let hsm: SoftHsm | undefined;
  let source: MasterKeySource | undefined;
  if (missing === undefined) {
    hsm = SoftHsm.create();
    const token = hsm.initToken({ label: 'shredder-bench', pin: 'bench-pin-0000' });
    hsm.importAesKey(token, `${PREFIX}1`, material);
    try {
      source = openPkcs11MasterKeys({ modulePath: hsm.modulePath, tokenLabel: token.label, pin: token.pin, keyLabelPrefix: PREFIX });
      const ring = new Keyring(source.ciphers, 1);
      // the two providers must agree before their speeds are compared
      const probe = Keyring.newDataKey(AES_256_GCM);
      const local = new Keyring([new LocalMasterKey(material, 1)], 1);
      if (!Buffer.from(local.unwrap(subjects[0], ring.wrap(subjects[0], probe)).key).equals(Buffer.from(probe.key))) throw new Error('pkcs11 and local disagree');
      rows.push(...rowsFor('pkcs11 (SoftHSM)', ring));
    } finally {
      await source?.close();
      hsm.remove();
    }
  }
  process.stderr.write('\n');

  console.log(`Master-key operations, one key per call (node ${process.version}${missing ? '' : ', SoftHSM 2 through pkcs11js'})`);
  console.log(`${'provider'.padEnd(18)}${'operation'.padEnd(38)}${'per second'.padStart(12)}${'±%'.padStart(7)}`);
  for (const r of rows) console.log(`${r.provider.padEnd(18)}${r.operation.padEnd(38)}${r.perSecond.toFixed(0).padStart(12)}${r.rme.toFixed(1).padStart(7)}`);
  const [single, batched] = [rows.find((r) => r.provider === 'local' && r.operation.startsWith('new subject key ('))!, rows.find((r) => r.operation.includes('wrapAll'))!];
  console.log(`\nlocal, batch / one by one (same run): ${(batched.perSecond / single.perSecond).toFixed(2)}`);
  if (missing !== undefined) {
    console.log(`\npkcs11: not measured, ${missing}`);
    return;
  }
  console.log('\nRatios pkcs11 / local (same run)');
  for (const operation of new Set(rows.map((r) => r.operation))) {
    const [local, pkcs11] = rows.filter((r) => r.operation === operation);
    if (pkcs11 === undefined) continue; // (local only)
    console.log(`  ${operation.padEnd(38)} ${(pkcs11.perSecond / local.perSecond).toFixed(3)} (${(local.perSecond / pkcs11.perSecond).toFixed(1)}x slower)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
