// The audit trail's subject reference, recomputed with node:crypto from what docs/wire-format.md
// ("Audit entry") says and nothing else, as an operator holding the audit key (or the master key)
// would, so the documentation and the code cannot drift apart: existing trails depend on the formula.
import { expect } from 'chai';
import { createCipheriv, createHmac } from 'node:crypto';
import type { ShredderConfig } from '../../../src/config/config.js';
import { ErasureAudit, type ErasureAuditEntry } from '../../../src/encryptor/erasure-audit.js';
import { Keyring } from '../../../src/keys/keyring.js';
import { LocalMasterKey } from '../../../src/keys/local-master-key.js';

/** docs/wire-format.md: HMAC-SHA256, under the audit key, of the ASCII prefix followed by the subject id's bytes; 64 hex digits. */
const documentedReference = (auditKey: Buffer, subject: Buffer) =>
  createHmac('sha256', auditKey).update(Buffer.concat([Buffer.from('kafka-shredder erasure audit reference v1', 'ascii'), subject])).digest('hex');

/**
 * docs/wire-format.md: without SHREDDER_AUDIT_KEY, the audit key is HMAC-SHA256 of the ASCII text
 * `erasure audit reference v1` under the first 32 bytes of the AES-256-GCM encryption of 32 zero
 * bytes by the current master key, with a 12-byte zero nonce and the associated data
 * `kafka-shredder derived key: erasure audit reference v1`.
 */
function documentedDerivedAuditKey(masterKey: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', masterKey, Buffer.alloc(12));
  cipher.setAAD(Buffer.from('kafka-shredder derived key: erasure audit reference v1', 'ascii'));
  const stream = Buffer.concat([cipher.update(Buffer.alloc(32)), cipher.final()]);
  return createHmac('sha256', stream.subarray(0, 32)).update('erasure audit reference v1', 'ascii').digest();
}

const subject = Buffer.from('carol@example.org', 'utf8');
const forget = { subject, offset: '4711', timestamp: Date.parse('2026-12-03T09:40:01.120Z'), keyRecordIndex: 0, keyIds: ['a1b2c3d4e5f60718'] };

/** The entry and record key the encryptor writes for one forget of `subject`. */
function written(audit: ErasureAudit): { key: string; entry: ErasureAuditEntry } {
  const [message] = audit.entries({ topic: 'orders-plain', partition: 1 }, [forget], 1, new Map([['encryption-keys/1', 913]]), Date.parse('2026-12-03T09:40:01.318Z'));
  return { key: (message.key as Buffer).toString('latin1'), entry: JSON.parse((message.value as Buffer).toString('utf8')) };
}

const config = (auditKey?: Buffer) => ({ auditTopic: 'shredder-erasure-audit', keysTopic: 'encryption-keys', auditKey, erasureDeadlineMs: 86_400_000, groupId: 'kafka-shredder-encrypt' }) as unknown as ShredderConfig;

describe('erasure audit reference', () => {
  const masterKey = Buffer.alloc(32, 3);
  const keyring = new Keyring([new LocalMasterKey(masterKey, 1)], 1);

  it('is the documented HMAC of the subject under SHREDDER_AUDIT_KEY, also as the record key', () => {
    const auditKey = Buffer.alloc(32, 5);
    const { key, entry } = written(ErasureAudit.of(config(auditKey), keyring, () => 'log-ref'));
    const expected = documentedReference(auditKey, subject);
    expect(entry.subject!.ref).to.equal(expected).and.match(/^[0-9a-f]{64}$/);
    expect(key).to.equal(expected);
    // (the prefix matters: the bare HMAC of the subject is another value)
    expect(expected).not.to.equal(createHmac('sha256', auditKey).update(subject).digest('hex'));
  });

  it('is the documented HMAC under the documented key derived from the master key when SHREDDER_AUDIT_KEY is unset', () => {
    const { entry } = written(ErasureAudit.of(config(undefined), keyring, () => 'log-ref'));
    expect(entry.subject!.ref).to.equal(documentedReference(documentedDerivedAuditKey(masterKey), subject));
  });
});
