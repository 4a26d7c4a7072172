// The documented way to move a local master key into a token (docs/operations.md, "pkcs11"), run as
// the page writes it, on key material holding the bytes that softhsm2-util --import cuts keys at
// (0x00, 0x0a): the provider accepts the key and seals what the local provider seals with the same
// material. Skips itself (visibly) without SoftHSM, pkcs11js or pkcs11-tool (Debian's opensc).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { LocalMasterKey } from '../../../src/keys/local-master-key.js';
import { openPkcs11MasterKeys } from '../../../src/keys/pkcs11-master-keys.js';
import { repoRoot } from '../../support/repo-root.js';
import { SOFTHSM_MODULE, SoftHsm, softHsmMissing } from '../../support/softhsm.js';

/** The sh block of docs/operations.md that writes key.bin into the token. */
function documentedImport(): string {
  const page = readFileSync(join(repoRoot(), 'docs/operations.md'), 'utf8');
  const blocks = [...page.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) => b.includes('--write-object key.bin'));
  expect(blocks, 'docs/operations.md: one sh block writing key.bin into the token').to.have.length(1);
  return blocks[0];
}

function pkcs11ToolMissing(): string | undefined {
  try {
    execFileSync('pkcs11-tool', ['--help'], { stdio: 'ignore' });
    return undefined;
  } catch (error) {
    // (it exits 1 after printing its usage: only a missing command counts)
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'pkcs11-tool is not installed (apt-get install opensc)' : undefined;
  }
}

describe('moving a local master key into a token, as docs/operations.md says', function () {
  this.timeout(30_000);
  let hsm: SoftHsm | undefined;
  let dir: string | undefined;

  before(function () {
    const missing = softHsmMissing() ?? pkcs11ToolMissing();
    if (missing === undefined) return;
    console.log(`      (skipped: ${missing})`);
    this.skip();
  });
  after(() => {
    hsm?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('imports all 32 bytes, 0x00 and 0x0a included, as a sensitive, non-extractable AES-256 key the provider opens', async () => {
    const command = documentedImport();
    expect(command).to.contain(SOFTHSM_MODULE); // (the page's module is the one these tests use)
    hsm = SoftHsm.create();
    const token = hsm.initToken({ label: 'kafka-shredder', pin: 'user-pin-836' }); // the page's token label
    const material = randomBytes(32);
    material[3] = 0x00;
    material[17] = 0x0a;
    dir = mkdtempSync(join(tmpdir(), 'shredder-import-'));
    writeFileSync(join(dir, 'key.bin'), material, { mode: 0o600 });
    execFileSync('bash', ['-euc', command], { cwd: dir, env: { ...process.env, PIN: token.pin, SOFTHSM2_CONF: hsm.confPath }, stdio: ['ignore', 'ignore', 'pipe'] });

    const warnings: string[] = [];
    // (it refuses a key that is short, not sensitive or extractable: opening is the check)
    const source = openPkcs11MasterKeys({ modulePath: SOFTHSM_MODULE, tokenLabel: token.label, pin: token.pin, keyLabelPrefix: 'kafka-shredder-master-key-', warn: (w) => warnings.push(w) });
    try {
      expect(source.ciphers.map((c) => c.id)).to.deep.equal([1]);
      const [cipher] = source.ciphers;
      const nonce = randomBytes(12);
      const aad = Buffer.from('aad');
      const dataKey = randomBytes(32);
      expect(Buffer.from(cipher.seal(nonce, aad, dataKey))).to.deep.equal(Buffer.from(new LocalMasterKey(material, 1).seal(nonce, aad, dataKey)));
      // imported, not generated in the token: accepted, with the warning that says so
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.contain('was imported or once extractable');
    } finally {
      await source.close();
    }
  });
});
