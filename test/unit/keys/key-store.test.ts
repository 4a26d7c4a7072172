// The key store keeps whatever value the keys topic holds for a subject, of any length, byte for byte;
// a value that is not a readable v1 key gives its subject no key, and no new one either.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import rocksdb from 'rocksdb';
import { RecordError } from '../../../src/errors/shredder-errors.js';
import { KeyStore } from '../../../src/keys/key-store.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { PartitionKeys } from '../../../src/keys/partition-keys.js';
import { WrappedKeyError } from '../../../src/wire/wrapped-key.js';

const call = (fn: (cb: (err?: Error) => void) => void) => new Promise<void>((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));

/** Values a keys topic may hold for a subject, by name: every length around and far from 74, and v1 look-alikes. */
function oddValues(master: MasterKey): [string, Uint8Array][] {
  const valid = Buffer.from(master.wrap(Buffer.from('donor'), MasterKey.newDataKey(1)));
  const withByte = (at: number, byte: number) => Buffer.concat([valid.subarray(0, at), Buffer.from([byte]), valid.subarray(at + 1)]);
  return [
    ['empty', new Uint8Array(0)],
    ['1 byte', Buffer.from([0x01])],
    ['73 bytes', valid.subarray(0, 73)],
    ['75 bytes', Buffer.concat([valid, Buffer.from([0xff])])],
    ['100 bytes', Buffer.concat([Buffer.from([0x01]), randomBytes(99)])],
    ['1 MB', Buffer.concat([Buffer.from([0x01]), randomBytes(1024 * 1024 - 1)])],
    ['version 2, 74 bytes', withByte(0, 0x02)],
    ['version 2, 300 bytes', Buffer.concat([Buffer.from([0x02]), randomBytes(299)])],
    ['unknown algorithm', withByte(1, 0x09)],
    ['forged tag', withByte(73, valid[73] ^ 1)],
    ['unknown master key id', withByte(13, 0x63)],
    ['copied from another subject', valid],
  ];
}

describe('key store: values of any length', () => {
  let location: string;
  let store: KeyStore;
  const master = new MasterKey(randomBytes(32), 1);
  beforeEach(async () => {
    location = mkdtempSync(join(tmpdir(), 'key-store-test-'));
    store = await KeyStore.open(location);
  });
  afterEach(async () => {
    await store.close().catch(() => {});
    await KeyStore.destroy(location);
  });

  it('keeps every value byte for byte, with its forget time, across a reopen', async () => {
    const values = oddValues(master);
    // (and subjects of any bytes: one of 64 KiB, zero bytes included)
    const subjects = values.map(([name], i) => (i === 0 ? Buffer.concat([Buffer.alloc(8), randomBytes(64 * 1024)]) : Buffer.from(`subject ${name}`)));
    await store.apply(values.map(([, wrapped], i) => ({ subject: subjects[i], wrapped, forgottenAt: i % 2 ? 1_700_000_000_000 + i : undefined })), { offset: 12, savedAt: 1 });
    const check = async (s: KeyStore) => {
      const entries = await s.get(subjects);
      entries.forEach((entry, i) => {
        expect(Buffer.from(entry!.wrapped!).equals(Buffer.from(values[i][1])), values[i][0]).to.equal(true);
        expect(entry!.forgottenAt, values[i][0]).to.equal(i % 2 ? 1_700_000_000_000 + i : undefined);
      });
      const walked = await s.entriesAfter(undefined, 100);
      expect(walked).to.have.length(values.length);
      for (const entry of walked) {
        const i = subjects.findIndex((subject) => subject.equals(entry.subject));
        expect(Buffer.from(entry.wrapped!).equals(Buffer.from(values[i][1])), values[i][0]).to.equal(true);
      }
    };
    await check(store);
    await store.close();
    store = await KeyStore.open(location);
    await check(store);
    expect((await store.checkpoint())!.offset).to.equal(12);
  });

  it('reads the entries of a store written when every value was 74 bytes (9 or 83 bytes an entry) as they were', async () => {
    await store.close();
    const wrapped = Buffer.from(master.wrap(Buffer.from('old'), MasterKey.newDataKey(1)));
    const entry = (hasKey: boolean, forgottenAt: number, value?: Buffer) => {
      const head = Buffer.alloc(9);
      head[0] = hasKey ? 1 : 0;
      head.writeDoubleBE(forgottenAt, 1);
      return value ? Buffer.concat([head, value]) : head;
    };
    const db = rocksdb(location);
    await call((cb) => db.open({ createIfMissing: true }, cb));
    const operations = [
      { type: 'put' as const, key: Buffer.from('sold'), value: entry(true, 0, wrapped) },
      { type: 'put' as const, key: Buffer.from('sgone'), value: entry(false, 1234) },
    ];
    await call((cb) => db.batch(operations, {}, cb));
    await call((cb) => db.close(cb));
    store = await KeyStore.open(location);
    const [old, gone] = await store.get([Buffer.from('old'), Buffer.from('gone')]);
    expect(Buffer.from(old!.wrapped!).equals(wrapped)).to.equal(true);
    expect(old!.forgottenAt).to.equal(undefined);
    expect(gone).to.deep.equal({ wrapped: undefined, forgottenAt: 1234 });
  });

  it('gives a subject whose value it cannot read no key (WrappedKeyError, a record error) and no new key, until a forget', async () => {
    const values = oddValues(master);
    const subjects = values.map(([name]) => Buffer.from(`subject ${name}`));
    // restored from the keys topic, committed, then read back by a fresh PartitionKeys (a task reopened)
    const restoring = new PartitionKeys(0, store, master);
    values.forEach(([, value], i) => restoring.applyRecord(subjects[i], value, undefined));
    await restoring.commit(values.length);
    const keys = new PartitionKeys(0, store, master);
    await keys.load(subjects);
    values.forEach(([name, value], i) => {
      expect(() => keys.lookup(subjects[i]), name).to.throw(WrappedKeyError);
      expect(() => keys.liveKey(subjects[i]), name).to.throw(RecordError);
      expect(Buffer.from(keys.entry(subjects[i]).wrapped!).equals(Buffer.from(value)), name).to.equal(true);
      // the value is the subject's, even one of a later format: no new key replaces it
      expect(() => keys.createKey(subjects[i], 1, 1000), name).to.throw(/already has a live key/);
    });
    // a forget destroys any value; the subject's next record gets a new key
    const [subject] = subjects;
    keys.forget(subject, 2000);
    expect(keys.entry(subject).wrapped).to.equal(undefined);
    const { key } = keys.createKey(subject, 1, 3000);
    await keys.commit(values.length + 2);
    expect(Buffer.from(master.unwrap(subject, (await store.get([subject]))[0]!.wrapped!).key).equals(Buffer.from(key.key))).to.equal(true);
  });
});
