// Master keys in an HSM (SoftHSM through PKCS#11) against the real broker: the encryptor wraps new
// keys inside the token; the same records open with the local provider given the key material that
// was imported into the token, and never with other material.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { Keyring } from '../../src/keys/keyring.js';
import { createLogger } from '../../src/observability/logger.js';
import { openPkcs11MasterKeys } from '../../src/keys/pkcs11-master-keys.js';
import type { MasterKeySource } from '../../src/keys/master-key-cipher.js';
import { startChildProcessor, type ChildProcessor } from '../support/child-processor.js';
import { decryptRecord, readKeysTable } from '../support/decrypt.js';
import { decryptorSetup, startDecryptingConsumer } from '../support/decryptor.js';
import { encryptorSetup, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, eventually, produce, readExactly, testKafka } from '../support/kafka.js';
import { SoftHsm, skipWithoutSoftHsm, type SoftHsmToken } from '../support/softhsm.js';

const stop = async (child: ChildProcessor) => {
  if (child.child.exitCode === null) child.child.kill('SIGTERM');
  return child.exited;
};

describe('master keys in a PKCS#11 HSM (SoftHSM)', function () {
  this.timeout(180_000);
  let kafka: Kafka;
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  let pinFile: string;
  const material = randomBytes(32);

  before(function () {
    skipWithoutSoftHsm(this);
    kafka = testKafka();
    hsm = SoftHsm.create();
    token = hsm.initToken({ label: 'shredder-it', pin: '4321-it' });
    hsm.importAesKey(token, 'kafka-shredder-master-key-1', material);
    pinFile = join(mkdtempSync(join(tmpdir(), 'shredder-pin-')), 'pin');
    writeFileSync(pinFile, `${token.pin}\n`);
  });
  after(() => hsm?.remove());

  /** The deployment's variables for the pkcs11 provider (the child finds SoftHSM's token folder through SOFTHSM2_CONF). */
  const pkcs11Env = () => ({
    SHREDDER_MASTER_KEY: '',
    SHREDDER_KEY_PROVIDER: 'pkcs11',
    SHREDDER_PKCS11_MODULE: hsm.modulePath,
    SHREDDER_PKCS11_TOKEN_LABEL: token.label,
    SHREDDER_PKCS11_PIN_FILE: pinFile,
    SOFTHSM2_CONF: hsm.confPath,
  });

  it('encrypts with a master key that never leaves the token, and the records open with the local provider given the same key material', async () => {
    const setup: EncryptorSetup = encryptorSetup({ ...pkcs11Env(), SHREDDER_LOG_LEVEL: 'info' });
    const encrypt = startChildProcessor('encrypt', setup.env);
    const decrypt = decryptorSetup(setup, { SHREDDER_MASTER_KEY: material.toString('base64'), SHREDDER_KEY_PROVIDER: 'local', SHREDDER_PKCS11_MODULE: '', SHREDDER_PKCS11_TOKEN_LABEL: '', SHREDDER_PKCS11_PIN_FILE: '' });
    let decryptChild: ChildProcessor | undefined;
    let source: MasterKeySource | undefined;
    try {
      const started = await encrypt.waitForLog((l) => l.msg === 'encryptor started', 60_000);
      expect(started).to.include({ keyProvider: 'pkcs11', masterKeyId: 1 });
      const sent = Array.from({ length: 40 }, (_, i) => ({ key: `hsm-user-${i % 8}`, value: `hsm-record-${i}` }));
      await produce(kafka, setup.input, sent);
      const outputs = await readExactly(kafka, setup.output, sent.length);

      // the keys-topic values are the contract's, master key id 1, and open under the imported material
      const table = await readKeysTable(kafka, setup.keysTopic);
      expect(table.size).to.equal(8);
      for (const [partition, records] of outputs) {
        for (const record of records) {
          const plaintext = await decryptRecord(record, partition, table, material);
          expect(plaintext.toString()).to.match(/^hsm-record-\d+$/);
        }
      }

      // the CLI decryptor with the local provider and the same material writes every plaintext
      decryptChild = startChildProcessor('decrypt', decrypt.env);
      const plain = allRecords(await readExactly(kafka, decrypt.output, sent.length));
      expect(plain.map((r) => r.value!.toString()).sort()).to.deep.equal(sent.map((r) => r.value).sort());

      // the library with a keyring of the token's keys opens them too
      source = openPkcs11MasterKeys({ modulePath: hsm.modulePath, tokenLabel: token.label, pin: token.pin, keyLabelPrefix: 'kafka-shredder-master-key-' });
      const app = await startDecryptingConsumer(setup, { masterKey: undefined, keyring: new Keyring(source.ciphers, 1), logger: createLogger('silent') });
      try {
        const received = await eventually('the library opened every record', async () => (app.received.length >= sent.length ? app.received : undefined), 60_000);
        expect(received.filter((m) => m.status !== 'ok')).to.deep.equal([]);
      } finally {
        await app.consumer.stop();
      }

      // and other key material never opens them: every record is dead-lettered as key unavailable
      const wrong = decryptorSetup(setup, { SHREDDER_MASTER_KEY: randomBytes(32).toString('base64'), SHREDDER_KEY_PROVIDER: 'local', SHREDDER_PKCS11_MODULE: '', SHREDDER_PKCS11_TOKEN_LABEL: '', SHREDDER_PKCS11_PIN_FILE: '', SHREDDER_DLQ_TOPIC: `${setup.dlqTopic}-wrong` });
      const wrongChild = startChildProcessor('decrypt', wrong.env);
      try {
        const dead = allRecords(await readExactly(kafka, wrong.config.dlqTopic, sent.length));
        expect(new Set(dead.map((d) => d.headers!['shredder.error']!.toString()))).to.deep.equal(new Set(['key unavailable: wrapped data key failed authentication (wrong master key, subject or forged)']));
      } finally {
        await stop(wrongChild);
      }
      expect(encrypt.output()).not.to.contain(token.pin);
    } finally {
      await source?.close();
      if (decryptChild) await stop(decryptChild);
      const exit = await stop(encrypt);
      expect(exit.code, encrypt.output().slice(-2000)).to.equal(0);
    }
  });

  it('refuses to start, naming the variable, when the PIN is wrong or no key has the label', async () => {
    const pinless = join(mkdtempSync(join(tmpdir(), 'shredder-pin-')), 'pin');
    writeFileSync(pinless, 'not-the-pin\n');
    for (const [env, variable] of [
      [{ ...pkcs11Env(), SHREDDER_PKCS11_PIN_FILE: pinless }, 'SHREDDER_PKCS11_PIN'],
      [{ ...pkcs11Env(), SHREDDER_PKCS11_KEY_LABEL: 'no-such-prefix-' }, 'SHREDDER_PKCS11_KEY_LABEL'],
    ] as const) {
      const setup = encryptorSetup({ ...env, SHREDDER_LOG_LEVEL: 'info' });
      const child = startChildProcessor('encrypt', setup.env);
      const exit = await child.exited;
      expect(exit.code, child.output()).to.equal(2);
      const failed = child.logs.find((l) => l.msg === 'encrypt failed to start')!;
      expect(String(failed.error)).to.contain(variable);
      expect(child.output()).not.to.contain('not-the-pin');
    }
  });
});
