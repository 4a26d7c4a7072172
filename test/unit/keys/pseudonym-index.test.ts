// The key stores' pseudonym index (SHREDDER_RECORD_KEYS=pseudonym): a pseudonym stands for its subject
// while its generation lives; a tombstone under it is its subject's, restored or followed; a destroyed
// generation's pseudonym goes from the store once its retention has passed (a queue in the store, in
// time order, so what an earlier run left goes too).
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore } from '../../../src/keys/key-store.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { PartitionKeys } from '../../../src/keys/partition-keys.js';

const alice = Buffer.from('alice');
const bob = Buffer.from('bob');
const hex = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString() : undefined);

describe('pseudonym index', () => {
  let store: KeyStore;
  let location: string;
  const master = new MasterKey(randomBytes(32), 1);
  beforeEach(async () => {
    location = mkdtempSync(join(tmpdir(), 'pseudonyms-test-'));
    store = await KeyStore.open(location);
  });
  afterEach(async () => {
    await store.close();
    await KeyStore.destroy(location);
  });

  it('makes pseudonymous keys: key records under the pseudonym, v2 values, the pseudonym standing for its subject once committed', async () => {
    const keys = new PartitionKeys(0, store, master, { pseudonymous: true });
    await keys.load([alice, bob]);
    const { key, record } = keys.createKey(alice, 1, 1000);
    const [bobs] = keys.createKeys([bob], 1, 1000).records;
    expect(key.pseudonym).to.have.length(16);
    expect(Buffer.from(record.recordKey).equals(Buffer.from(key.pseudonym!))).to.equal(true);
    expect(record.value![0]).to.equal(0x02);
    expect((await keys.resolvePseudonyms([record.recordKey, bobs.recordKey, alice])).map(hex)).to.deep.equal(['alice', 'bob', undefined]); // (staged)
    await keys.commit(2);
    expect((await store.pseudonymSubjects([record.recordKey, bobs.recordKey])).map(hex)).to.deep.equal(['alice', 'bob']);
    // a forget's tombstone goes under the pseudonym; the encryptor (no retention) drops it from the store at the commit
    const tombstone = keys.forget(alice, 2000);
    expect(Buffer.from(tombstone.recordKey).equals(Buffer.from(key.pseudonym!))).to.equal(true);
    await keys.commit(3);
    expect((await store.pseudonymSubjects([record.recordKey, bobs.recordKey])).map(hex)).to.deep.equal([undefined, 'bob']);
    // no live value: a fresh pseudonym that names nobody
    await keys.load([alice]);
    const again = keys.forget(alice, 3000);
    expect(again.recordKey).to.have.length(16);
    expect(Buffer.from(again.recordKey).equals(Buffer.from(key.pseudonym!))).to.equal(false);
  });

  it('resolves a tombstone under a pseudonym to its subject, in a restore and when following, and keeps it for the retention', async () => {
    const maker = new PartitionKeys(0, store, master, { pseudonymous: true });
    await maker.load([alice]);
    const { record } = maker.createKey(alice, 1, 1000);
    const pseudonym = Buffer.from(record.recordKey);
    const subject = maker.pseudonymousSubject(record.value!, pseudonym);
    expect(hex(subject)).to.equal('alice');
    expect(maker.pseudonymousSubject(record.value!, randomBytes(16))).to.equal(undefined); // (moved under another record key)
    maker.rollback();

    // a reader (the decryptor) restores the value and the tombstone in one batch, keeping the pseudonym for 60 s
    const reader = new PartitionKeys(0, store, master, { retiredPseudonymMs: 60_000 });
    const forgottenAt = Date.now();
    await reader.restore([{ subject: subject!, wrapped: record.value!, pseudonym }, { subject: pseudonym, forgottenAt }], 2);
    await reader.load([alice]);
    expect(reader.liveKey(alice)).to.equal(undefined);
    expect(reader.forgottenAt(alice)).to.equal(forgottenAt);
    expect((await reader.resolvePseudonyms([pseudonym])).map(hex)).to.deep.equal(['alice']); // (a late marker still finds her)
    await reader.deleteExpiredPseudonyms(forgottenAt + 59_000);
    expect((await store.pseudonymSubjects([pseudonym])).map(hex)).to.deep.equal(['alice']);
    // once the retention has passed (at a commit, looked at every 6 s for a 60 s retention, or when a task opens), it goes
    await reader.deleteExpiredPseudonyms(forgottenAt + 61_000); // (too soon after the last look: nothing done)
    expect((await store.pseudonymSubjects([pseudonym])).map(hex)).to.deep.equal(['alice']);
    await reader.deleteExpiredPseudonyms(forgottenAt + 66_000);
    expect((await store.pseudonymSubjects([pseudonym])).map(hex)).to.deep.equal([undefined]);
    expect((await reader.resolvePseudonyms([pseudonym])).map(hex)).to.deep.equal([undefined]);
  });

  it('following: a tombstone whose value came in an earlier batch; without retention its pseudonym goes with it, a live one stays', async () => {
    const maker = new PartitionKeys(0, store, master, { pseudonymous: true });
    await maker.load([alice, bob]);
    const a = maker.createKey(alice, 1, 1000).record;
    const b = maker.createKey(bob, 1, 1000).record;
    maker.rollback();
    const reader = new PartitionKeys(0, store, master, { retiredPseudonymMs: 0 });
    const value = (r: typeof a) => ({ subject: reader.pseudonymousSubject(r.value!, r.recordKey)!, wrapped: r.value!, pseudonym: r.recordKey });
    await reader.applyRecords([value(a), value(b)]);
    await reader.commit(2);
    await reader.applyRecords([{ subject: a.recordKey, forgottenAt: 7000 }]);
    await reader.load([alice, bob]);
    expect(reader.forgottenAt(alice)).to.equal(7000);
    expect(reader.liveKey(bob)).to.not.equal(undefined);
    await reader.commit(3);
    expect((await store.pseudonymSubjects([a.recordKey, b.recordKey])).map(hex)).to.deep.equal([undefined, 'bob']);
    await reader.deleteExpiredPseudonyms(Date.now() + 86_400_000);
    expect((await store.pseudonymSubjects([b.recordKey])).map(hex)).to.deep.equal(['bob']);
  });
});
