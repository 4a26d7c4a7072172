// Field-level encryption against a real broker: only the personal fields are sealed, everything else
// stays byte for byte readable, forget nulls the personal fields and keeps the facts.
import { expect } from 'chai';
import { createDecipheriv } from 'node:crypto';
import type { IHeaders, Kafka } from 'kafkajs';
import { requestForget } from '../../src/encryptor/forget-request.js';
import { locateFields, spliceFields } from '../../src/fields/json-fields.js';
import { parseJsonPath } from '../../src/fields/json-path.js';
import { decryptorSetup, startDecryptingConsumer, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, eventually, produce, readExactly, readTopic, testKafka } from '../support/kafka.js';

const FIELDS = '$.email,$.address.street,$.phones[*],$.profile,$.ssn';
const PATHS = FIELDS.split(',').map(parseJsonPath);
const text = (value: Buffer | null | undefined) => (value == null ? null : value.toString());
const header = (headers: IHeaders | undefined, name: string) => text(headers?.[name] as Buffer | undefined);

// odd spacing, number spellings, escapes and unicode on purpose: none of it may change
const ALICE = [
  '{"orderId":"o-1", "total" : 1.0,"email":"alice@example.org","address":{"street":"1 Rabbit Hole","city":"Lyon"},"phones":["+33 1 23","+33 4 56"],"profile":{"age":30,"vip":true,"tags":["a","b"],"note":null},"ssn":1234567890123456789012,"note":"caf\\u00e9 \u2615"}',
  '{ "orderId" : "o-2", "total": 2.50e1, "email": "al\\"ice\\"@example.org", "ssn": -0.5e-3 }',
  '{"orderId":"o-3","total":3}',
];
const BOB = ['{"orderId":"o-4","total":4,"email":"bob@example.org","address":{"street":"2 Builder Way","city":"Paris"},"phones":[]}'];
const PERSONAL = ['alice@example.org', 'Rabbit Hole', '+33 1 23', '+33 4 56', '1234567890123456789012', '"age":30', 'al\\"ice', 'bob@example.org', 'Builder Way'];

/** The JSON text with the selected fields replaced by `replacement`. */
const withFields = (json: string, replacement: string) => {
  const spans = locateFields(json, PATHS);
  return spliceFields(json, spans, spans.map(() => replacement));
};


const readCount = async (kafka: Kafka, topic: string, count: number) => allRecords(await readExactly(kafka, topic, count));

describe('field-level encryption', function () {
  this.timeout(180_000);
  let kafka: Kafka;
  let setup: EncryptorSetup;
  const running: { stop(): Promise<void> }[] = [];
  const started = <T extends { stop(): Promise<void> }>(p: T): T => (running.push(p), p);

  before(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop().catch(() => {})));
  });

  it('seals only the selected fields; the rest stays byte for byte readable; decrypt restores the exact JSON', async () => {
    setup = encryptorSetup({ SHREDDER_FIELDS: FIELDS });
    started(await startEncryptor(setup));
    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const app = await startDecryptingConsumer(setup);
    started(app.consumer);
    await produce(kafka, setup.input, [...ALICE.map((value) => ({ key: 'alice', value })), ...BOB.map((value) => ({ key: 'bob', value }))]);

    const encrypted = await readCount(kafka, setup.output, 4);
    for (const record of encrypted) {
      const value = text(record.value)!;
      for (const personal of PERSONAL) expect(value, 'personal data in the encrypted log').to.not.contain(personal);
      const original = [...ALICE, ...BOB].find((json) => withFields(json, '"#"') === value.replace(/"shr1:[A-Za-z0-9_-]+"/g, '"#"'));
      expect(original, `every byte outside the sealed fields unchanged: ${value}`).to.not.equal(undefined);
    }
    const withoutFields = encrypted.find((r) => text(r.value)!.includes('"o-3"'))!;
    expect(text(withoutFields.value)).to.equal(ALICE[2]); // no selected field: untouched

    const out = await readCount(kafka, decrypt.output, 4);
    expect(out.filter((r) => text(r.key) === 'alice').map((r) => text(r.value))).to.deep.equal(ALICE);
    expect(out.filter((r) => text(r.key) === 'bob').map((r) => text(r.value))).to.deep.equal(BOB);
    const handed = await eventually('the application got all', async () => (app.received.length === 4 ? app.received : undefined));
    expect(handed.map((m) => m.status)).to.deep.equal(['ok', 'ok', 'ok', 'ok']);
    expect(handed.filter((m) => text(m.key) === 'alice').map((m) => text(m.value))).to.deep.equal(ALICE);
  });

  it('writes each field as "shr1:" + base64url(envelope), associated data binding subject and path: node:crypto alone opens it', async () => {
    setup = encryptorSetup({ SHREDDER_FIELDS: '$.address.street' });
    started(await startEncryptor(setup));
    await produce(kafka, setup.input, [{ key: 'alice', value: '{"address":{"street":"1 Rabbit Hole"},"n":1}', partition: 2 }]);
    const [record] = await readCount(kafka, setup.output, 1);
    const [keyRecord] = (await readTopic(kafka, setup.keysTopic)).get(2)!;
    const token = JSON.parse(text(record.value)!).address.street as string;
    expect(token).to.match(/^shr1:[A-Za-z0-9_-]+$/);
    const envelope = Buffer.from(token.slice(5), 'base64url');
    const wrapped = keyRecord.value!;
    const unwrap = createDecipheriv('aes-256-gcm', setup.masterKey, wrapped.subarray(14, 26), { authTagLength: 16 });
    unwrap.setAAD(Buffer.concat([wrapped.subarray(0, 26), Buffer.from('alice')]));
    unwrap.setAuthTag(wrapped.subarray(58, 74));
    const dataKey = Buffer.concat([unwrap.update(wrapped.subarray(26, 58)), unwrap.final()]);
    expect([envelope[0], envelope[1]]).to.deep.equal([0x01, 0x01]);
    const open = createDecipheriv('chacha20-poly1305', dataKey, envelope.subarray(10, 22), { authTagLength: 16 });
    const aad = Buffer.concat([envelope.subarray(0, 22), Buffer.from('alice'), Buffer.from([0]), Buffer.from('$.address.street')]);
    open.setAAD(aad, { plaintextLength: envelope.length - 38 });
    open.setAuthTag(envelope.subarray(envelope.length - 16));
    const plaintext = Buffer.concat([open.update(envelope.subarray(22, envelope.length - 16)), open.final()]);
    expect(plaintext.toString()).to.equal('"1 Rabbit Hole"'); // the field's JSON text
  });

  it('after forget, personal fields are null (or the configured value) and every other field is intact', async () => {
    setup = encryptorSetup({ SHREDDER_FIELDS: FIELDS });
    started(await startEncryptor(setup));
    await produce(kafka, setup.input, [...ALICE.map((value) => ({ key: 'alice', value })), ...BOB.map((value) => ({ key: 'bob', value }))]);
    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    await readCount(kafka, setup.output, 5);

    const marker = decryptorSetup(setup);
    const erased = decryptorSetup(setup, { SHREDDER_SHREDDED_FIELD_VALUE: '"[erased]"' });
    for (const d of await Promise.all([startDecryptor(marker), startDecryptor(erased)])) started(d);
    const app = await startDecryptingConsumer(setup);
    started(app.consumer);

    const out = await readCount(kafka, marker.output, 5);
    const alice = out.filter((r) => text(r.key) === 'alice' && r.value !== null);
    expect(alice.map((r) => text(r.value))).to.deep.equal([withFields(ALICE[0], 'null'), withFields(ALICE[1], 'null'), ALICE[2]]);
    expect(alice.map((r) => header(r.headers, 'shredder.status'))).to.deep.equal(['shredded', 'shredded', null]);
    expect(header(alice[0].headers, 'shredder.shredded-fields')).to.equal('$.email,$.address.street,$.phones[*],$.phones[*],$.profile,$.ssn');
    expect(header(alice[1].headers, 'shredder.shredded-fields')).to.equal('$.email,$.ssn');
    expect(out.filter((r) => text(r.key) === 'bob').map((r) => text(r.value))).to.deep.equal(BOB);
    expect(JSON.parse(text(alice[0].value)!)).to.deep.include({ orderId: 'o-1', total: 1, email: null, note: 'café ☕' });

    const erasedOut = await readCount(kafka, erased.output, 5);
    expect(erasedOut.filter((r) => text(r.key) === 'alice' && r.value !== null).map((r) => text(r.value))[0]).to.equal(withFields(ALICE[0], '"[erased]"'));

    const handed = await eventually('the application got all', async () => (app.received.length === 5 ? app.received : undefined));
    const aliceHanded = handed.filter((m) => text(m.key) === 'alice');
    expect(aliceHanded.map((m) => m.status)).to.deep.equal(['shredded', 'shredded', 'ok', 'forget']);
    expect(aliceHanded[1].shreddedFields).to.deep.equal(['$.email', '$.ssn']);
    expect(text(aliceHanded[1].value)).to.equal(withFields(ALICE[1], 'null'));
  });

  it('refuses a field ciphertext moved to another field or another subject, and bad JSON, with a reason', async () => {
    setup = encryptorSetup({ SHREDDER_FIELDS: FIELDS });
    started(await startEncryptor(setup));
    await produce(kafka, setup.input, [
      { key: 'alice', value: ALICE[0] },
      { key: 'bob', value: BOB[0] },
      { key: 'carol', value: 'not json at all' },
      { key: 'carol', value: '["an","array"]' },
    ]);
    const encrypted = await readCount(kafka, setup.output, 2);
    const dead = await readCount(kafka, setup.dlqTopic, 2);
    expect(dead.map((r) => header(r.headers, 'shredder.error'))).to.deep.equal(['not JSON: the value does not start with a JSON object', 'not a JSON object: field mode needs an object, got an array']);

    const aliceValue = JSON.parse(text(encrypted.find((r) => text(r.key) === 'alice')!.value)!);
    const bobValue = JSON.parse(text(encrypted.find((r) => text(r.key) === 'bob')!.value)!);
    const tampered = [
      // alice's e-mail ciphertext in her street field: the path in the associated data differs
      { key: 'alice', value: JSON.stringify({ ...aliceValue, address: { ...aliceValue.address, street: aliceValue.email } }), expect: 'dlq' },
      // alice's e-mail ciphertext in bob's record: bob's key does not open it
      { key: 'bob', value: JSON.stringify({ ...bobValue, email: aliceValue.email }), expect: 'not readable' },
      // claims to be encrypted but is not base64url
      { key: 'alice', value: JSON.stringify({ orderId: 'x', email: 'shr1:***' }), expect: 'dlq' },
      // never encrypted: left as it is
      { key: 'alice', value: '{"orderId":"y","email":"plain@example.org"}', expect: 'as is' },
    ];
    // straight into the encrypted topic, on the partitions where alice's and bob's keys live
    const partitionOf = new Map<string, number>();
    for (const [partition, records] of await readTopic(kafka, setup.output)) for (const r of records) partitionOf.set(text(r.key)!, partition);
    await produce(kafka, setup.output, tampered.map(({ key, value }) => ({ key, value, partition: partitionOf.get(key) })));

    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const out = await readCount(kafka, decrypt.output, 4);
    const values = out.map((r) => text(r.value) ?? '');
    expect(values.filter((v) => v.includes('alice@example.org')), 'only her own record opens her e-mail').to.deep.equal([ALICE[0]]);
    expect(values).to.include('{"orderId":"y","email":"plain@example.org"}');
    const bobsMoved = out.find((r) => text(r.key) === 'bob' && text(r.value)!.includes('"email":null'));
    expect(bobsMoved, 'the moved field is shredded in bob\'s record, never opened').to.not.equal(undefined);
    expect(header(bobsMoved!.headers, 'shredder.shredded-fields')).to.equal('$.email');
    const decryptDead = (await readCount(kafka, setup.dlqTopic, 4)).slice(2).map((r) => header(r.headers, 'shredder.error')).sort();
    expect(decryptDead).to.deep.equal([
      'authentication failed: the field was altered, forged, or moved to another field or subject',
      'encrypted field is not valid base64url',
    ]);
  });

  it('takes the subject from SHREDDER_SUBJECT_FIELD, wherever its records are partitioned, and forgets it on every partition', async () => {
    setup = encryptorSetup({ SHREDDER_FIELDS: '$.email', SHREDDER_SUBJECT_FIELD: '$.userId' });
    started(await startEncryptor(setup));
    // keyed by order: one user's records land on several partitions
    const orders = Array.from({ length: 12 }, (_, i) => ({ key: `order-${i}`, value: JSON.stringify({ userId: i % 2 ? 'u-odd' : 'u-even', email: `user${i % 2}@example.org`, n: i }) }));
    await produce(kafka, setup.input, [...orders, { key: 'order-x', value: '{"email":"nobody@example.org"}' }]);
    await readCount(kafka, setup.output, 12);
    const dead = await readCount(kafka, setup.dlqTopic, 1);
    expect(header(dead[0].headers, 'shredder.error')).to.equal('no subject: $.userId is missing from the value');
    const keyPartitions = new Set<number>();
    for (const [partition, records] of await readTopic(kafka, setup.keysTopic)) if (records.some((r) => text(r.key) === 'u-even')) keyPartitions.add(partition);
    expect(keyPartitions.size, 'u-even has a key on each partition its records reached').to.be.greaterThan(1);

    await requestForget(kafka, [setup.input], Buffer.from('u-even'), { allPartitions: true });
    await readCount(kafka, setup.output, 15); // + one forget marker per partition
    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const out = (await readCount(kafka, decrypt.output, 15)).filter((r) => r.value !== null);
    for (const record of out) {
      const value = JSON.parse(text(record.value)!);
      expect(value.email, `order ${value.n}`).to.equal(value.userId === 'u-even' ? null : 'user1@example.org');
    }
  });
});
