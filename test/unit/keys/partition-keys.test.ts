// Per-partition key state: one live key per subject, changes reach RocksDB only on commit.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore } from '../../../src/keys/key-store.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { PartitionKeys } from '../../../src/keys/partition-keys.js';

const alice = Buffer.from('alice');

describe('partition keys and key store', () => {
  let store: KeyStore;
  let location: string;
  const master = new MasterKey(randomBytes(32), 1);
  beforeEach(async () => {
    location = mkdtempSync(join(tmpdir(), 'keys-test-'));
    store = await KeyStore.open(location);
  });
  afterEach(async () => {
    await store.close();
    await KeyStore.destroy(location);
  });

  it('creates one live key per subject and persists it with the checkpoint on commit', async () => {
    const keys = new PartitionKeys(0, store, master);
    await keys.load([alice]);
    expect(keys.liveKey(alice)).to.equal(undefined);
    const { key } = keys.createKey(alice, 1, 1000);
    expect(() => keys.createKey(alice, 1, 1001)).to.throw(/already has a live key/);
    expect((await store.get([alice]))[0]).to.equal(undefined); // not before the commit
    await keys.commit(7);
    const [entry] = await store.get([alice]);
    expect(Buffer.from(master.unwrap(alice, entry!.wrapped!).key).equals(Buffer.from(key.key))).to.equal(true);
    expect((await store.checkpoint())!.offset).to.equal(7);
  });

  it('keeps every subject of a load larger than its cache until the store changes, cached or read, with and without keys', async () => {
    const keys = new PartitionKeys(0, store, master, 4);
    const subjects = Array.from({ length: 12 }, (_, i) => Buffer.from(`many-${i}`));
    await keys.load(subjects.slice(0, 6));
    const created = subjects.slice(0, 6).map((subject) => keys.createKey(subject, 1, 1000).key);
    await keys.commit(6);
    // 6 in the store with keys (some still cached), 6 never seen: each looked up after one load of all 12
    await keys.load(subjects);
    subjects.forEach((subject, i) => {
      const key = keys.liveKey(subject);
      if (i < 6) expect(Buffer.from(key!.key).equals(Buffer.from(created[i].key)), `subject ${i}`).to.equal(true);
      else expect(key, `subject ${i}`).to.equal(undefined);
    });
    for (const subject of subjects.slice(6)) keys.createKey(subject, 1, 2000);
    await keys.commit(12);
    await keys.load(subjects);
    for (const subject of subjects) expect(keys.liveKey(subject), subject.toString()).to.not.equal(undefined);
  });

  it('creates a batch of keys (createKeys): staged until commit like createKey, one live key per subject, forget times kept', async () => {
    const keys = new PartitionKeys(0, store, master);
    const subjects = ['a', 'b', 'c', 'd'].map((s) => Buffer.from(`batch-${s}`));
    await keys.load(subjects);
    keys.forget(subjects[3], 500);
    const { keys: created, records } = keys.createKeys(subjects, 1, 1000);
    expect(records.map((r) => r.subject)).to.deep.equal(subjects);
    expect(records.map((r) => r.forgottenAt)).to.deep.equal([undefined, undefined, undefined, 500]);
    subjects.forEach((subject, i) => {
      expect(Buffer.from(master.unwrap(subject, records[i].value!).key).equals(Buffer.from(created[i].key))).to.equal(true);
      expect(keys.liveKey(subject)).to.equal(created[i]);
    });
    expect(() => keys.createKeys([subjects[0]], 1, 1001)).to.throw(/already has a live key/);
    const other = Buffer.from('batch-e');
    await keys.load([other]);
    expect(() => keys.createKeys([other, Buffer.from(other)], 1, 1001)).to.throw(/comes twice/);
    expect((await store.get(subjects)).every((entry) => entry === undefined || entry.wrapped === undefined)).to.equal(true); // not before the commit
    await keys.commit(9);
    const stored = await store.get(subjects);
    stored.forEach((entry, i) => expect(Buffer.from(entry!.wrapped!).equals(Buffer.from(records[i].value!))).to.equal(true));
  });

  it('reports the subjects changed since a generation (new keys, forgets, rollbacks), or undefined past its log', async () => {
    const keys = new PartitionKeys(0, store, master);
    const bob = Buffer.from('bob');
    await keys.load([alice, bob]);
    const start = keys.generation;
    keys.createKey(alice, 1, 1000);
    const afterAlice = keys.generation;
    keys.forget(bob, 2000);
    expect(keys.changesSince(start)).to.deep.equal(['alice', 'bob']);
    expect(keys.changesSince(afterAlice)).to.deep.equal(['bob']);
    keys.rollback(); // (both changes undone: both subjects changed again)
    expect(keys.changesSince(afterAlice)).to.have.members(['bob', 'alice', 'bob']);
    expect(keys.changesSince(keys.generation)).to.deep.equal([]);
    // a log that no longer reaches back that far: undefined (the caller must assume anything changed)
    const many = Array.from({ length: 10_000 }, (_, i) => Buffer.from(`s-${i}`));
    await keys.load(many);
    for (const subject of many) keys.forget(subject, 3000);
    expect(keys.changesSince(start)).to.equal(undefined);
    expect(keys.changesSince(keys.generation - 2)).to.deep.equal(['s-9998', 's-9999']);
  });

  it('forgets: no key afterwards, the time remembered, the store entry without a wrapped key', async () => {
    const keys = new PartitionKeys(0, store, master);
    await keys.load([alice]);
    keys.createKey(alice, 1, 1000);
    await keys.commit(1);
    const tombstone = keys.forget(alice, 5000);
    expect(tombstone).to.include({ value: null, forgottenAt: 5000 });
    expect(keys.liveKey(alice)).to.equal(undefined);
    await keys.commit(2);
    const [entry] = await store.get([alice]);
    expect(entry).to.deep.equal({ wrapped: undefined, forgottenAt: 5000 });
    const reloaded = new PartitionKeys(0, store, master);
    await reloaded.load([alice]);
    expect(reloaded.forgottenAt(alice)).to.equal(5000);
  });

  it('rolls back an aborted transaction without touching the store', async () => {
    const keys = new PartitionKeys(0, store, master);
    await keys.load([alice]);
    keys.createKey(alice, 1, 1000);
    keys.rollback();
    expect((await store.get([alice]))[0]).to.equal(undefined);
    await keys.load([alice]);
    expect(keys.liveKey(alice)).to.equal(undefined);
  });

  it('keeps a key record applied while a store read was in flight, even once committed and evicted', async () => {
    // the first read answers with what the store held when it started, but only when released
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reads = 0;
    const slowStore = Object.create(store) as KeyStore;
    slowStore.get = async (subjects) => {
      const entries = await store.get(subjects);
      if (reads++ === 0) await released;
      return entries;
    };
    const keys = new PartitionKeys(0, slowStore, master, 1);
    const loading = keys.load([alice]);
    // meanwhile the keys topic brings alice's key (the decryptor's follower), committed at once
    const dataKey = MasterKey.newDataKey(1);
    keys.applyRecord(alice, master.wrap(alice, dataKey), undefined);
    await keys.commit(3);
    await keys.load([Buffer.from('bob')]); // a one-entry cache: alice is evicted
    release();
    await loading;
    expect(Buffer.from(keys.liveKey(alice)!.keyId).equals(Buffer.from(dataKey.keyId)), 'the stale "no key" read must not win').to.equal(true);
  });
});
