// Proof of erasure against the real broker: the audit trail written with each tombstone, and
// `kafka-shredder verify-erasure` telling pending, then erased, for a forgotten subject; unknown and
// live subjects; a subject forgotten twice; and no subject id in clear anywhere in the trail.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { auditReference, type ErasureAuditEntry } from '../../src/encryptor/erasure-audit.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { subjectRefFor } from '../../src/observability/logger.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, eventually, produce, readAtLeast, readTopic, testKafka, withAdmin } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

interface Verified {
  code: number | null;
  receipt: {
    status: string;
    exitCode: number;
    subject: { ref: string; logRef: string };
    keysTopic: { partitions: { partition: number; tombstone?: { offset: number }; readableOldKeys: unknown[]; deadline?: string; localStore: { present: boolean; holdsOldKey: boolean; filesScanned: number } }[] };
    audit: { searched: boolean; entries: ErasureAuditEntry[] };
  };
  text: string;
}

/** `kafka-shredder verify-erasure <subject> --json` (and its human summary) as an auditor runs it, beside the encryptor. */
async function verify(setup: EncryptorSetup, subject: string): Promise<Verified> {
  const run = (json: boolean) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'verify-erasure', subject, ...(json ? ['--json'] : [])], { env: { PATH: process.env.PATH, ...setup.env } });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c));
      child.stderr.on('data', (c: Buffer) => (out += c));
      child.on('exit', (code) => resolve({ code, out }));
    });
  // (both forms of the same state: when compaction ran between the two runs, they are asked again)
  let [json, text] = await Promise.all([run(true), run(false)]);
  for (let again = 0; again < 3 && text.code !== json.code; again++) [json, text] = await Promise.all([run(true), run(false)]);
  expect(text.code, text.out).to.equal(json.code);
  let receipt: Verified['receipt'];
  try {
    receipt = JSON.parse(json.out);
  } catch {
    throw new Error(`verify-erasure printed no JSON (exit ${json.code}):\n${json.out}`);
  }
  return { code: json.code, receipt, text: text.out };
}

describe('proof of erasure', function () {
  this.timeout(120_000);
  let kafka: Kafka;
  let encryptor: Encryptor | undefined;
  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    await encryptor?.stop();
    encryptor = undefined;
  });

  it('writes an audit entry with each tombstone, and verify-erasure shows pending, then erased once compaction has run', async () => {
    // deadline 4 s: the old key value goes within seconds (see the encryptor's erasure-deadline test)
    const setup = encryptorSetup({ SHREDDER_ERASURE_DEADLINE_MS: '4000' });
    encryptor = await startEncryptor(setup);
    await produce(kafka, setup.input, [{ key: 'alice@example.org', value: 'alice-1' }, { key: 'bob@example.org', value: 'bob-1' }]);
    await readAtLeast(kafka, setup.output, 2);
    const live = await verify(setup, 'alice@example.org');
    expect(live.code, live.text).to.equal(4);
    expect(live.receipt.status).to.equal('not-forgotten');

    await requestForget(kafka, [setup.input], Buffer.from('alice@example.org'));
    await readAtLeast(kafka, setup.output, 3);
    const pending = await verify(setup, 'alice@example.org');
    expect(pending.code, pending.text).to.equal(3);
    expect(pending.receipt.status).to.equal('pending');
    const [partition] = pending.receipt.keysTopic.partitions;
    expect(partition.readableOldKeys).to.have.length(1);
    expect(partition.tombstone).to.not.equal(undefined);
    expect(pending.text).to.contain('PENDING').and.contain('compaction pending');
    // the local store lost the key at once
    expect(partition.localStore).to.deep.include({ present: true, holdsOldKey: false });
    expect(partition.localStore.filesScanned).to.be.greaterThan(0);

    // the audit entry: the request, the tombstone's offset, the key id destroyed, the deadline
    const master = new MasterKey(setup.masterKey, 1);
    expect(pending.receipt.subject.logRef).to.equal(subjectRefFor(master)(Buffer.from('alice@example.org')));
    const [entry] = pending.receipt.audit.entries;
    expect(pending.receipt.audit.entries).to.have.length(1);
    expect(entry.requested).to.deep.include({ topic: setup.input, partition: partition.partition });
    expect(entry.keyDestroyed.tombstoneOffset).to.equal(partition.tombstone!.offset);
    expect(entry.keyDestroyed.keyIds).to.have.length(1);
    expect(entry.erasureDeadline.deadlineMs).to.equal(4000);
    expect(entry.subject!.ref).to.equal(pending.receipt.subject.ref);

    const erased = await eventually('verify-erasure to say erased', async () => {
      const result = await verify(setup, 'alice@example.org');
      return result.code === 0 ? result : undefined;
    }, 60_000, 1000);
    expect(erased.receipt.status).to.equal('erased');
    expect(erased.receipt.keysTopic.partitions[0].readableOldKeys).to.deep.equal([]);
    expect(erased.text).to.contain('ERASED');
    // the other subject is untouched
    expect((await verify(setup, 'bob@example.org')).code).to.equal(4);
  });

  it('says unknown for a subject it never saw, and records a subject forgotten twice twice', async () => {
    const setup = encryptorSetup({ SHREDDER_AUDIT_KEY: Buffer.alloc(32, 5).toString('base64') });
    encryptor = await startEncryptor(setup);
    const unknown = await verify(setup, 'nobody@example.org');
    expect(unknown.code, unknown.text).to.equal(5);
    expect(unknown.receipt.status).to.equal('unknown');

    await produce(kafka, setup.input, [{ key: 'carol@example.org', value: 'carol-1' }]);
    await readAtLeast(kafka, setup.output, 1);
    await requestForget(kafka, [setup.input], Buffer.from('carol@example.org'));
    await readAtLeast(kafka, setup.output, 2);
    await requestForget(kafka, [setup.input], Buffer.from('carol@example.org'));
    await readAtLeast(kafka, setup.output, 3);
    const twice = await eventually('both erasures in the trail', async () => {
      const result = await verify(setup, 'carol@example.org');
      return result.receipt.audit.entries.length === 2 ? result : undefined;
    });
    const [first, second] = twice.receipt.audit.entries;
    expect(first.keyDestroyed.keyIds).to.have.length(1); // the key
    expect(second.keyDestroyed.keyIds).to.deep.equal([]); // nothing left to destroy
    expect(second.keyDestroyed.tombstoneOffset).to.be.greaterThan(first.keyDestroyed.tombstoneOffset);
    // the reference is the audit key's, which whoever holds it recomputes from the subject id
    expect(first.subject!.ref).to.equal(auditReference(Buffer.alloc(32, 5), Buffer.from('carol@example.org')));
  });

  it('keeps the audit trail forever and free of subject ids in clear', async () => {
    const setup = encryptorSetup();
    encryptor = await startEncryptor(setup);
    const subjects = ['dave.d@example.org', 'erin-4711', 'Frank Ünicode'];
    await produce(kafka, setup.input, subjects.map((s) => ({ key: s, value: `${s} record` })));
    await readAtLeast(kafka, setup.output, subjects.length);
    for (const subject of subjects) await requestForget(kafka, [setup.input], Buffer.from(subject));
    const trail = await eventually('three audit entries', async () => {
      const records = allRecords(await readTopic(kafka, setup.config.auditTopic));
      return records.length === subjects.length ? records : undefined;
    });
    for (const record of trail) {
      const bytes = Buffer.concat([record.key ?? Buffer.alloc(0), record.value ?? Buffer.alloc(0), ...Object.entries(record.headers ?? {}).map(([k, v]) => Buffer.from(`${k}${v}`))]);
      for (const subject of subjects) {
        for (const form of [subject, Buffer.from(subject).toString('base64'), Buffer.from(subject).toString('hex')]) expect(bytes.includes(Buffer.from(form)), form).to.equal(false);
      }
    }
    const config = await withAdmin(kafka, (admin) => admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: setup.config.auditTopic }] }));
    const setting = (name: string) => config.resources[0].configEntries.find((e) => e.configName === name)?.configValue;
    expect(setting('retention.ms')).to.equal('-1');
    expect(setting('cleanup.policy')).to.equal('delete');
  });
});
