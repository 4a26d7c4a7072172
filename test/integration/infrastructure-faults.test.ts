// Infrastructure that fails for a few seconds and comes back, under a steady load of new and known
// subjects: the HSM holding the master keys (SoftHSM behind test/support/faulty-pkcs11, whose cipher
// calls return CKR_DEVICE_ERROR while a flag file exists) and the RocksDB state dir (made immutable
// with chattr +i, which stops root too). Such a fault is never a record's: nothing may be
// dead-lettered, no record may be lost, doubled, reordered or reported shredded, the process must
// not exit, and /healthz says what is wrong once the fault has outlasted SHREDDER_TASK_OPEN_TIMEOUT_MS
// (and only then), and is healthy again after.
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { Keyring } from '../../src/keys/keyring.js';
import type { MasterKeySource } from '../../src/keys/master-key-cipher.js';
import { openPkcs11MasterKeys } from '../../src/keys/pkcs11-master-keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { startChildProcessor, type ChildProcessor } from '../support/child-processor.js';
import { decryptRecord, readKeysTable } from '../support/decrypt.js';
import { decryptorSetup, startDecryptingConsumer, type DecryptorSetup } from '../support/decryptor.js';
import { encryptorSetup, type EncryptorSetup } from '../support/encryptor.js';
import { faultyPkcs11, skipWithoutFaultyPkcs11, type FaultyPkcs11 } from '../support/faulty-pkcs11.js';
import { freePort, freePorts, get } from '../support/http.js';
import { allRecords, readAtLeast, readTopic, testKafka } from '../support/kafka.js';
import { SoftHsm, type SoftHsmToken } from '../support/softhsm.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SHREDDER_TASK_OPEN_TIMEOUT_MS of the processors under test: how long a fault may last before /healthz says 503. */
const BOUND_MS = 3000;
const FAULT_MS = 7000;
const KNOWN_SUBJECTS = 40;

/**
 * Produces for `durationMs`: 20 records every 300 ms, 15 of them of 40 known subjects and 5 of subjects
 * never seen before (so every moment needs new keys wrapped, and every decryptor new keys unwrapped).
 * Resolves with the number of records sent.
 */
async function produceLoad(kafka: Kafka, topic: string, durationMs: number): Promise<number> {
  const producer = kafka.producer();
  await producer.connect();
  const started = Date.now();
  let sent = 0;
  try {
    for (let chunk = 0; chunk === 0 || Date.now() - started < durationMs; chunk++) {
      const messages = Array.from({ length: 20 }, (_, i) => ({
        key: i < 15 ? `known-${(chunk * 15 + i) % KNOWN_SUBJECTS}` : `new-${chunk}-${i}`,
        value: `event-${sent + i}`,
      }));
      await producer.send({ topic, messages });
      sent += messages.length;
      await sleep(300);
    }
  } finally {
    await producer.disconnect();
  }
  return sent;
}

interface Probe { sentAt: number; at: number; status: number; body: { problem?: string } }

/** Polls a processor's /healthz every 200 ms until stop(), keeping every answer (none while it does not listen). */
function pollHealth(port: number): { probes: Probe[]; stop: () => Promise<void> } {
  const probes: Probe[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const sentAt = Date.now();
      const response = await get(port, '/healthz').catch(() => undefined);
      if (response) probes.push({ sentAt, at: Date.now(), status: response.status, body: JSON.parse(response.body) });
      await sleep(200);
    }
  })();
  return { probes, stop: async () => { running = false; await loop; } };
}

/**
 * What /healthz said around a fault from `faultStart` to `faultEnd`: healthy before the fault and for
 * its first BOUND_MS (a short outage must not get the pod restarted), 503 naming `source` before the
 * fault ends, and healthy again once it is over.
 */
function expectHealthAround(probes: Probe[], faultStart: number, faultEnd: number, source: RegExp, who: string): void {
  // (runs of the same answer, in ms from the fault's start)
  const shown = () => {
    const runs: { from: number; to: number; answer: string }[] = [];
    for (const p of probes) {
      const answer = `${p.status} ${p.body.problem ?? ''}`.trim();
      const last = runs[runs.length - 1];
      if (last?.answer === answer) last.to = p.at - faultStart;
      else runs.push({ from: p.at - faultStart, to: p.at - faultStart, answer });
    }
    return `fault from 0 to ${faultEnd - faultStart} ms:\n${runs.map((r) => `  ${r.from}..${r.to} ms: ${r.answer}`).join('\n')}`;
  };
  // (a 503 is decided while its request is in flight: not before it was sent)
  const early = probes.filter((p) => p.status !== 200 && p.at < faultStart + BOUND_MS);
  expect(early, `${who}: /healthz not 200 before the fault had lasted ${BOUND_MS} ms\n${shown()}`).to.deep.equal([]);
  const during = probes.filter((p) => p.status === 503 && p.sentAt < faultEnd);
  expect(during.length, `${who}: /healthz 503 while the fault lasted past ${BOUND_MS} ms\n${shown()}`).to.be.above(0);
  for (const probe of during) expect(probe.body.problem, `${who}: the reason /healthz gives\n${shown()}`).to.match(source);
  const last = probes[probes.length - 1];
  expect(last?.status, `${who}: /healthz once the fault is over\n${shown()}`).to.equal(200);
}

/** Records in a topic, 0 while it does not exist yet or its leader is not known. */
async function countRecords(kafka: Kafka, topic: string): Promise<number> {
  try {
    return allRecords(await readTopic(kafka, topic)).length;
  } catch {
    return 0;
  }
}

/**
 * Waits until `total` records have been written to `output` or dead-lettered to `dlq` (a dead letter
 * fails the test at once, with its reason, instead of a wait for records that will never come).
 */
async function settled(kafka: Kafka, output: string, dlq: string, total: number, who: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const [written, dead] = [await countRecords(kafka, output), await countRecords(kafka, dlq)];
    if (dead > 0) return expectNoDeadLetters(kafka, dlq, who);
    if (written >= total) return;
    if (Date.now() > deadline) expect.fail(`${who}: ${written} of ${total} records written to ${output} after 120 s (none dead-lettered)`);
    await sleep(1000);
  }
}

/** `actual` is `expected`, or the failure says where they part: counts, the first difference, what is missing or doubled. */
function expectSameSequence(actual: string[], expected: string[], what: string): void {
  if (actual.length === expected.length && actual.every((a, i) => a === expected[i])) return;
  const first = expected.findIndex((e, i) => actual[i] !== e);
  const counts = (list: string[]) => list.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
  const got = counts(actual);
  const missing = expected.filter((e) => !got.has(e));
  const doubled = [...got].filter(([, n]) => n > 1).map(([x, n]) => `${x} x${n}`);
  expect.fail(
    `${what}: ${actual.length} records, ${expected.length} expected; first difference at ${first < 0 ? expected.length : first} ` +
      `(got ${actual[first] ?? 'nothing'}, expected ${expected[first] ?? 'nothing'}); missing ${missing.length} (${missing.slice(0, 5).join(', ')}); ` +
      `doubled ${doubled.length} (${doubled.slice(0, 5).join(', ')})`,
  );
}

/**
 * Every input record once, in order per partition, in the encrypted output (opened with the key
 * material under the master key), and in the decryptor's plaintext output when given.
 */
async function expectExactlyOnce(kafka: Kafka, setup: EncryptorSetup, material: Buffer, total: number, plaintextTopic?: string): Promise<void> {
  const outputs = await readAtLeast(kafka, setup.output, total, 120_000, 1000); // more: duplicates, shown below
  const plain = plaintextTopic ? await readAtLeast(kafka, plaintextTopic, total, 120_000, 1000) : undefined;
  const inputs = await readTopic(kafka, setup.input);
  expect(allRecords(inputs).length).to.equal(total);
  const table = await readKeysTable(kafka, setup.keysTopic);
  for (const [partition, records] of inputs) {
    const expected = records.map((r) => `${r.key!.toString()}:${r.value!.toString()}`);
    const decrypted: string[] = [];
    for (const record of outputs.get(partition) ?? []) {
      const plaintext = await decryptRecord(record, partition, table, material);
      decrypted.push(`${record.key!.toString()}:${plaintext === 'shredded' ? 'shredded' : plaintext.toString()}`);
    }
    expectSameSequence(decrypted, expected, `encrypted output, partition ${partition}`);
    if (plain) {
      const got = (plain.get(partition) ?? []).map((r: KafkaMessage) => `${r.key!.toString()}:${r.value?.toString() ?? r.headers?.['shredder.status']?.toString()}`);
      expectSameSequence(got, expected, `decryptor's plaintext output, partition ${partition}`);
    }
  }
}

/** No subject got two keys (a retried batch reuses nothing of an aborted one's, and creates its keys once). */
async function expectOneKeyPerSubject(kafka: Kafka, keysTopic: string): Promise<void> {
  const bySubject = new Map<string, number>();
  for (const r of allRecords(await readTopic(kafka, keysTopic))) {
    if (r.key) bySubject.set(r.key.toString(), (bySubject.get(r.key.toString()) ?? 0) + 1);
  }
  expect([...bySubject].filter(([, n]) => n !== 1)).to.deep.equal([]);
}

/**
 * The encryptor and the decryptor behind it have settled: every input record once and in order in
 * both outputs, one key per subject, nothing dead-lettered by either.
 */
async function expectBothExactlyOnce(kafka: Kafka, setup: EncryptorSetup, decrypt: DecryptorSetup, material: Buffer, total: number): Promise<void> {
  await settled(kafka, setup.output, setup.dlqTopic, total, 'encryptor');
  await settled(kafka, decrypt.output, decrypt.config.dlqTopic, total, 'decryptor');
  await expectExactlyOnce(kafka, setup, material, total, decrypt.output);
  await expectOneKeyPerSubject(kafka, setup.keysTopic);
  await expectNoDeadLetters(kafka, setup.dlqTopic, 'encryptor');
  await expectNoDeadLetters(kafka, decrypt.config.dlqTopic, 'decryptor');
}

async function expectNoDeadLetters(kafka: Kafka, dlqTopic: string, who: string): Promise<void> {
  const dead = allRecords(await readTopic(kafka, dlqTopic));
  const shown = dead.slice(0, 5).map((d) => `${d.headers?.['shredder.error']?.toString()} (${d.headers?.['shredder.source']?.toString()})`);
  expect(dead.length, `${who}: dead letters, e.g. ${shown.join('; ')}`).to.equal(0);
}

/** Keeps the processors' output of a failed test in files, for whoever has to find out why. */
function keepOutputs(test: string, children: Record<string, ChildProcessor | undefined>): void {
  const dir = mkdtempSync(join(tmpdir(), `shredder-${test}-`));
  for (const [who, child] of Object.entries(children)) if (child) writeFileSync(join(dir, `${who}.log`), child.output());
  console.log(`      (the processors' output: ${dir})`);
}

/** The child is still running (it never exited during the fault), then stops cleanly on SIGTERM. */
async function expectAliveThenStop(child: ChildProcessor, who: string): Promise<void> {
  expect({ code: child.child.exitCode, signal: child.child.signalCode }, `${who} exited\n${child.output().slice(-3000)}`).to.deep.equal({ code: null, signal: null });
  child.child.kill('SIGTERM');
  const exit = await child.exited;
  expect(exit.code, `${who}: exit code after SIGTERM\n${child.output().slice(-3000)}`).to.equal(0);
}

async function stopQuietly(child: ChildProcessor | undefined): Promise<void> {
  if (!child || child.child.exitCode !== null || child.child.signalCode !== null) return;
  child.child.kill('SIGTERM');
  await child.exited;
}

describe('infrastructure faults under load', function () {
  this.timeout(300_000);
  let kafka: Kafka;
  before(() => {
    kafka = testKafka();
  });

  describe('the HSM of the master keys fails for a few seconds (PKCS#11 CKR_DEVICE_ERROR)', () => {
    const PREFIX = 'kafka-shredder-master-key-';
    const token: SoftHsmToken = { label: 'shredder-faults', pin: '2718-faults' };
    const material = randomBytes(32);
    let hsm: SoftHsm | undefined;
    let pinFile: string;
    const faults: FaultyPkcs11[] = [];

    before(function () {
      skipWithoutFaultyPkcs11(this);
      hsm = SoftHsm.create();
      hsm.initToken(token);
      hsm.importAesKey(token, `${PREFIX}1`, material); // known material: the test opens the output itself
      pinFile = join(mkdtempSync(join(tmpdir(), 'shredder-pin-')), 'pin');
      writeFileSync(pinFile, `${token.pin}\n`);
    });
    after(() => {
      for (const fault of faults.splice(0)) fault.remove();
      hsm?.remove();
    });

    /** A fault-injecting HSM of its own (its own flag) in front of the test's SoftHSM. */
    function faultyHsm(): FaultyPkcs11 {
      const fault = faultyPkcs11(hsm!.modulePath);
      faults.push(fault);
      return fault;
    }

    /** The pkcs11 provider's variables, through `fault`'s module. */
    const pkcs11Env = (fault: FaultyPkcs11) => ({
      SHREDDER_MASTER_KEY: '',
      SHREDDER_KEY_PROVIDER: 'pkcs11',
      SHREDDER_PKCS11_MODULE: fault.modulePath,
      SHREDDER_PKCS11_TOKEN_LABEL: token.label,
      SHREDDER_PKCS11_PIN_FILE: pinFile,
      SOFTHSM2_CONF: hsm!.confPath,
      ...fault.env,
    });

    it('encryptor and decryptor (CLI): nothing dead-lettered, every record once and in order, /healthz 503 naming the master key only past the bound, healthy again after, never an exit', async () => {
      // Each process reaches the HSM through its own flag: while the encryptor's HSM is down it
      // writes no new keys, so a decryptor sharing that outage would have nothing to unwrap; its own
      // outage comes after, while the encryptor catches up with a backlog of new subjects.
      const encryptorHsm = faultyHsm();
      const decryptorHsm = faultyHsm();
      const [encryptPort, decryptPort] = await freePorts(2);
      const setup = encryptorSetup({ ...pkcs11Env(encryptorHsm), SHREDDER_TASK_OPEN_TIMEOUT_MS: String(BOUND_MS), SHREDDER_HTTP_PORT: String(encryptPort), SHREDDER_LOG_LEVEL: 'info' });
      const decrypt = decryptorSetup(setup, { ...pkcs11Env(decryptorHsm), SHREDDER_HTTP_PORT: String(decryptPort), SHREDDER_DLQ_TOPIC: `${setup.dlqTopic}-decrypt` });
      const encryptor = startChildProcessor('encrypt', setup.env);
      let decryptor: ChildProcessor | undefined;
      const health = { encrypt: pollHealth(encryptPort), decrypt: pollHealth(decryptPort) };
      try {
        await encryptor.waitForLog((l) => l.msg === 'encryptor started', 60_000);
        decryptor = startChildProcessor('decrypt', decrypt.env);
        await decryptor.waitForLog((l) => l.msg === 'decryptor started', 60_000);
        const producing = produceLoad(kafka, setup.input, 24_000);
        await sleep(4000);
        const encryptFault = Date.now();
        encryptorHsm.fail();
        await sleep(FAULT_MS);
        encryptorHsm.recover();
        const encryptRecovered = Date.now();
        // (the decryptor's outage begins once the encryptor writes new keys again, for it to unwrap)
        await encryptor.waitForLog((l) => l.msg === 'partition makes progress again after an infrastructure fault', 30_000);
        await sleep(1000);
        const decryptFault = Date.now();
        decryptorHsm.fail();
        await sleep(FAULT_MS);
        decryptorHsm.recover();
        const decryptRecovered = Date.now();
        const total = await producing;

        await expectBothExactlyOnce(kafka, setup, decrypt, material, total);
        await sleep(1000); // (a last probe after the output is complete)
        await Promise.all([health.encrypt.stop(), health.decrypt.stop()]);
        const masterKey = /master.key|hsm|pkcs#?11/i;
        expectHealthAround(health.encrypt.probes, encryptFault, encryptRecovered, masterKey, 'encryptor');
        expectHealthAround(health.decrypt.probes, decryptFault, decryptRecovered, masterKey, 'decryptor');
        await expectAliveThenStop(encryptor, 'the encryptor');
        await expectAliveThenStop(decryptor, 'the decryptor');
      } catch (error) {
        keepOutputs('hsm-fault', { encryptor, decryptor });
        throw error;
      } finally {
        encryptorHsm.recover();
        decryptorHsm.recover();
        await Promise.all([health.encrypt.stop(), health.decrypt.stop()]);
        await Promise.all([stopQuietly(encryptor), stopQuietly(decryptor)]);
      }
    });

    it('an encryptor started while the HSM is down serves its probes, waits, says so past the bound, and goes on by itself', async () => {
      const hsmDown = faultyHsm();
      const port = await freePort();
      const setup = encryptorSetup({ ...pkcs11Env(hsmDown), SHREDDER_TASK_OPEN_TIMEOUT_MS: String(BOUND_MS), SHREDDER_HTTP_PORT: String(port), SHREDDER_LOG_LEVEL: 'info' });
      hsmDown.fail();
      const faultStart = Date.now();
      const encryptor = startChildProcessor('encrypt', setup.env);
      const health = pollHealth(port);
      try {
        await encryptor.waitForLog((l) => l.msg === 'deriving the log key failed; retrying until the master key is available', 30_000);
        await sleep(FAULT_MS);
        const ready = (await get(port, '/readyz')).status;
        expect(ready, '/readyz while it waits for the HSM').to.equal(503);
        hsmDown.recover();
        const faultEnd = Date.now();
        await encryptor.waitForLog((l) => l.msg === 'encryptor started', 60_000);
        const total = await produceLoad(kafka, setup.input, 2000);
        await settled(kafka, setup.output, setup.dlqTopic, total, 'encryptor');
        await expectExactlyOnce(kafka, setup, material, total);
        await sleep(1000); // (a last probe after the output is complete)
        await health.stop();
        expectHealthAround(health.probes, faultStart, faultEnd, /master.key|hsm|pkcs#?11/i, 'encryptor');
        await expectAliveThenStop(encryptor, 'the encryptor');
      } catch (error) {
        keepOutputs('hsm-down-at-start', { encryptor });
        throw error;
      } finally {
        hsmDown.recover();
        await health.stop();
        await stopQuietly(encryptor);
      }
    });

    it('the library\'s DecryptingConsumer with the token\'s keys: hands every record once, in order, never as shredded, dead-letters nothing, does not fail, and health() says so past faultBoundMs', async () => {
      // the encryptor holds the same material locally: only the library's HSM fails here
      const setup = encryptorSetup({ SHREDDER_MASTER_KEY: material.toString('base64'), SHREDDER_LOG_LEVEL: 'info' });
      const encryptor = startChildProcessor('encrypt', setup.env);
      const libraryHsm = faultyHsm();
      const libraryDlq = `${setup.dlqTopic}-library`;
      const previous = Object.fromEntries(Object.keys(libraryHsm.env).map((name) => [name, process.env[name]]));
      Object.assign(process.env, libraryHsm.env); // the module reads them from this process's environment
      let source: MasterKeySource | undefined;
      let app: Awaited<ReturnType<typeof startDecryptingConsumer>> | undefined;
      try {
        await encryptor.waitForLog((l) => l.msg === 'encryptor started', 60_000);
        source = openPkcs11MasterKeys({ modulePath: libraryHsm.modulePath, tokenLabel: token.label, pin: token.pin, keyLabelPrefix: PREFIX });
        app = await startDecryptingConsumer(setup, { masterKey: undefined, keyring: new Keyring(source.ciphers, 1), dlqTopic: libraryDlq, logger: createLogger('silent'), faultBoundMs: BOUND_MS });
        let failed: unknown;
        app.consumer.failed?.catch((error) => (failed = error));
        // health() as an application's own probe would serve it
        const consumer = app.consumer;
        const probes: Probe[] = [];
        const polling = setInterval(() => {
          const { live, problem } = consumer.health();
          probes.push({ sentAt: Date.now(), at: Date.now(), status: live ? 200 : 503, body: { problem } });
        }, 200);
        const producing = produceLoad(kafka, setup.input, 18_000);
        await sleep(5000);
        const faultStart = Date.now();
        libraryHsm.fail();
        await sleep(FAULT_MS);
        libraryHsm.recover();
        const faultEnd = Date.now();
        const total = await producing;

        const received = app.received;
        const handed = () => new Set(received.map((m) => `${m.partition}/${m.offset}`)).size;
        const deadline = Date.now() + 120_000;
        while (handed() < total && (await countRecords(kafka, libraryDlq)) === 0 && Date.now() < deadline) await sleep(1000);
        await expectNoDeadLetters(kafka, libraryDlq, 'the library');
        await expectNoDeadLetters(kafka, setup.dlqTopic, 'the encryptor (local provider, no fault)');
        expect(received.filter((m) => m.status !== 'ok').map((m) => `${m.partition}/${m.offset}: ${m.status}`), 'records not handed as ok').to.deep.equal([]);
        const inputs = await readTopic(kafka, setup.input);
        for (const [partition, records] of inputs) {
          // at-least-once: a record handed again after a retry is the same record at the same offset
          const firstTimes = new Map<string, string>();
          for (const m of received.filter((r) => r.partition === partition)) if (!firstTimes.has(m.offset)) firstTimes.set(m.offset, `${m.key!.toString()}:${m.value!.toString()}`);
          expectSameSequence([...firstTimes.values()], records.map((r) => `${r.key!.toString()}:${r.value!.toString()}`), `handed to the application, partition ${partition}`);
        }
        expect(failed, 'DecryptingConsumer.failed').to.equal(undefined);
        await sleep(1000); // (a last probe after every record was handed)
        clearInterval(polling);
        expectHealthAround(probes, faultStart, faultEnd, /master.key|hsm|pkcs#?11/i, 'the library');
      } finally {
        libraryHsm.recover();
        await app?.consumer.stop();
        await source?.close();
        for (const [name, value] of Object.entries(previous)) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
        await stopQuietly(encryptor);
      }
    });
  });

  describe('the RocksDB state dir becomes unwritable for a few seconds', () => {
    /** Why chattr +i cannot make a file unwritable here (not root, or a filesystem without the flag), or undefined. */
    function immutableFilesMissing(): string | undefined {
      const dir = mkdtempSync(join(tmpdir(), 'shredder-chattr-'));
      const file = join(dir, 'probe');
      try {
        writeFileSync(file, '');
        execFileSync('chattr', ['+i', file], { stdio: ['ignore', 'ignore', 'pipe'] });
        try {
          writeFileSync(file, 'x');
          return 'chattr +i did not stop a write here';
        } catch {
          return undefined;
        } finally {
          execFileSync('chattr', ['-i', file]);
        }
      } catch (error) {
        return `chattr +i is not available on ${tmpdir()} (it needs root and a filesystem with the immutable flag, e.g. ext4; e2fsprogs): ${(error as Error).message.split('\n')[0]}`;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    // chmod does not stop root (the tests' user in CI), and a file already open for writing (RocksDB's
    // write-ahead log) stays writable after a chmod or a read-only bind mount anyway: the immutable
    // flag stops both, on the folders and the files in them.
    // (its exit status is not checked: a file RocksDB deletes while chattr walks the folder is reported
    // missing; chattr sets a folder's flag before it walks it, so nothing comes or goes after that)
    const freeze = (dir: string) => spawnSync('chattr', ['-R', '+i', dir], { stdio: 'ignore' });
    const thaw = (dir: string) => spawnSync('chattr', ['-R', '-i', dir], { stdio: 'ignore' });

    before(function () {
      const missing = immutableFilesMissing();
      if (missing === undefined) return;
      console.log(`      (skipped: ${missing})`);
      this.skip();
    });

    it('encryptor and decryptor (CLI): nothing dead-lettered, every record once and in order after recovery, never an exit', async () => {
      const material = randomBytes(32);
      const setup = encryptorSetup({ SHREDDER_MASTER_KEY: material.toString('base64'), SHREDDER_TASK_OPEN_TIMEOUT_MS: String(BOUND_MS), SHREDDER_LOG_LEVEL: 'info' });
      const decrypt = decryptorSetup(setup, { SHREDDER_DLQ_TOPIC: `${setup.dlqTopic}-decrypt` });
      const stateDirs = [setup.config.stateDir, decrypt.config.stateDir];
      const encryptor = startChildProcessor('encrypt', setup.env);
      const decryptor = startChildProcessor('decrypt', decrypt.env);
      try {
        await encryptor.waitForLog((l) => l.msg === 'encryptor started', 60_000);
        await decryptor.waitForLog((l) => l.msg === 'decryptor started', 60_000);
        const producing = produceLoad(kafka, setup.input, 18_000);
        await sleep(5000);
        for (const dir of stateDirs) freeze(dir);
        await sleep(FAULT_MS);
        for (const dir of stateDirs) thaw(dir);
        const total = await producing;

        await expectBothExactlyOnce(kafka, setup, decrypt, material, total);
        // the fault did reach the stores (else this test shows nothing): their writes failed meanwhile
        const warned = [...encryptor.logs, ...decryptor.logs].filter((l) => (l.level as number) >= 40 && /EPERM|Operation not permitted|IO error/i.test(JSON.stringify(l)));
        expect(warned.length, 'log lines about the failed store writes').to.be.above(0);
        await expectAliveThenStop(encryptor, 'the encryptor');
        await expectAliveThenStop(decryptor, 'the decryptor');
      } catch (error) {
        keepOutputs('state-dir-fault', { encryptor, decryptor });
        throw error;
      } finally {
        // (whatever happened: an immutable folder could not even be deleted)
        for (const dir of stateDirs) thaw(dir);
        await Promise.all([stopQuietly(encryptor), stopQuietly(decryptor)]);
      }
    });
  });
});
