// Field mode on records in the schema registry wire format, against a real broker and a real registry
// (Apicurio, started by the tests), produced and consumed with a serializer nobody here wrote
// (@kafkajs/confluent-schema-registry): the encrypted topic stays readable under the same schema id,
// non-personal fields as they were and personal ones sealed; decrypt and the library give every field
// back; forget turns a subject's fields into null or empty and leaves the rest intact; a schema that
// cannot carry a selected field, or a path naming no field, refuses the start.
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { expect } from 'chai';
import Long from 'long';
import protobuf from 'protobufjs';
import type { IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { spawn } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import { createLogger } from '../../src/observability/logger.js';
import { Reencryptor } from '../../src/reencryptor/reencryptor.js';
import { encodeProtobufFrame, parseProtobufFrame } from '../../src/wire/registry-framing.js';
import { decryptorSetup, startDecryptingConsumer, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor, type EncryptorSetup } from '../support/encryptor.js';
import { allRecords, produce, readExactly, readTopic, testKafka, uniqueName } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';
import { testSchemaRegistry } from '../support/schema-registry.js';

const header = (headers: IHeaders | undefined, name: string) => (headers?.[name] as Buffer | undefined)?.toString() ?? null;

const ADDRESS = {
  type: 'record',
  name: 'Address',
  fields: [
    { name: 'street', type: 'string', 'confluent:tags': ['PII'] },
    { name: 'city', type: 'string' },
  ],
};
const CUSTOMER_V1 = {
  type: 'record',
  name: 'Customer',
  namespace: 'shop',
  fields: [
    { name: 'customerId', type: 'string' },
    { name: 'email', type: 'string' },
    { name: 'nickname', type: ['null', 'string'], default: null },
    { name: 'photo', type: 'bytes' },
    { name: 'address', type: ['null', ADDRESS], default: null },
    { name: 'phones', type: { type: 'array', items: 'string' } },
    { name: 'preferences', type: { type: 'map', values: 'string' } },
    { name: 'total', type: 'double' },
    { name: 'visits', type: 'long' },
  ],
};
// evolved mid-stream: a new tagged field, with a default, as a compatible evolution does
const CUSTOMER_V2 = { ...CUSTOMER_V1, fields: [...CUSTOMER_V1.fields, { name: 'loyaltyCard', type: ['null', 'string'], default: null, 'confluent:tags': ['PII'] }] };

interface Customer {
  customerId: string;
  email: string;
  nickname: string | null;
  photo: Buffer;
  address: { street: string; city: string } | null;
  phones: string[];
  preferences: Record<string, string>;
  total: number;
  visits: number;
  loyaltyCard?: string | null;
}

const customer = (name: string, n: number, extra: Partial<Customer> = {}): Customer => ({
  customerId: name,
  email: `${name}.${n}@example.org`,
  nickname: n % 2 === 0 ? null : `${name}-nick-${n}`,
  photo: Buffer.from(`photo of ${name} ${n}`),
  address: n % 3 === 0 ? null : { street: `${n} ${name} Street`, city: 'Lyon' },
  phones: [`+33 ${name} ${n}`, `+44 ${name} ${n}`],
  preferences: { newsletter: n % 2 === 0 ? 'yes' : 'no', secret: `${name}'s secret ${n}` },
  total: n * 1.25,
  visits: n * 1000,
  ...extra,
});
/** A value as plain data (objects, arrays, Buffers as their JSON form), to compare with deep equality. */
const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const PERSONAL_FIELDS = '$.email,$.nickname,$.photo,$.phones[*],$.preferences.secret';

describe('field mode on schema registry formats', function () {
  this.timeout(240_000);
  let kafka: Kafka;
  let url: string;
  let registry: SchemaRegistry;
  const running: { stop(): Promise<void> }[] = [];
  const started = <T extends { stop(): Promise<void> }>(p: T): T => (running.push(p), p);

  before(async function () {
    url = await testSchemaRegistry(this);
    // (Ajv's strict mode refuses keywords it does not know, confluent:tags among them: as CSFLE users run it)
    registry = new SchemaRegistry({ host: url }, { [SchemaType.JSON]: { strict: false } });
    kafka = testKafka();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop().catch(() => {})));
  });

  const registerAvro = async (topic: string, schema: object) => (await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject: `${topic}-value` })).id;
  const read = async (topic: string, count: number): Promise<KafkaMessage[]> => allRecords(await readExactly(kafka, topic, count));
  // (as plain data: the deserializer's records are instances of classes of its own)
  const decoded = async (records: KafkaMessage[]) => Promise.all(records.map(async (r) => (r.value ? plain((await registry.decode(r.value)) as Customer) : null)));
  const avroSetup = (overrides: Record<string, string> = {}): EncryptorSetup =>
    encryptorSetup({ SHREDDER_SCHEMA_REGISTRY_URL: url, SHREDDER_FIELDS: PERSONAL_FIELDS, SHREDDER_FIELD_TAGS: 'PII', ...overrides });

  it('Avro: seals the selected and tagged fields under the same schema id, through a schema evolution; decrypt and the library restore every field', async () => {
    const setup = avroSetup();
    const v1 = await registerAvro(setup.input, CUSTOMER_V1);
    started(await startEncryptor(setup));
    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const app = await startDecryptingConsumer(setup);
    started(app.consumer);

    const first = [customer('alice', 1), customer('bob', 2), customer('alice', 3)];
    await produce(kafka, setup.input, await Promise.all(first.map(async (c) => ({ key: c.customerId, value: await registry.encode(v1, c) }))));
    const v2 = await registerAvro(setup.input, CUSTOMER_V2);
    expect(v2).to.not.equal(v1);
    const second = [customer('alice', 4, { loyaltyCard: 'CARD-alice-4' }), customer('bob', 5, { loyaltyCard: null })];
    await produce(kafka, setup.input, await Promise.all(second.map(async (c) => ({ key: c.customerId, value: await registry.encode(v2, c) }))));
    const inputs = [...first, ...second];

    const encrypted = await read(setup.output, 5);
    expect(encrypted.map((r) => r.value!.readUInt32BE(1))).to.deep.equal([v1, v1, v1, v2, v2]); // (one partition per key: alice's in order)
    for (const record of encrypted) {
      for (const c of inputs) {
        for (const personal of [c.email, c.phones[0], `${c.customerId}'s secret`, 'Street', 'photo of', 'CARD-']) expect(record.value!.includes(personal), personal).to.equal(false);
      }
    }
    // the usual deserializer reads the encrypted topic: facts as they were, personal fields sealed
    for (const [k, value] of (await decoded(encrypted)).entries()) {
      const original = inputs.find((c) => c.total === value!.total)!;
      expect(value!.customerId).to.equal(original.customerId);
      expect([value!.visits, value!.preferences.newsletter, value!.address?.city]).to.deep.equal([original.visits, original.preferences.newsletter, original.address?.city]);
      expect(value!.email, `record ${k}`).to.match(/^shr1:[A-Za-z0-9_-]+$/);
      expect(Buffer.from(value!.photo).subarray(0, 5).toString()).to.equal('shr1:');
      if (original.nickname) expect(value!.nickname).to.match(/^shr1:/);
      else expect(value!.nickname).to.equal(null);
      if (original.address) expect(value!.address!.street).to.match(/^shr1:/);
      for (const phone of value!.phones) expect(phone).to.match(/^shr1:/);
      expect(value!.preferences.secret).to.match(/^shr1:/);
      if (original.loyaltyCard) expect(value!.loyaltyCard).to.match(/^shr1:/);
    }

    const out = await read(decrypt.output, 5);
    const byTotal = (values: (Customer | null)[]) => [...values].sort((a, b) => a!.total - b!.total);
    expect(byTotal(await decoded(out))).to.deep.equal(plain(inputs));
    expect(out.map((r) => r.value!.readUInt32BE(1)).sort()).to.deep.equal([v1, v1, v1, v2, v2].sort());
    const handed = await eventuallyAll(app.received, 5);
    expect(handed.map((m) => m.status)).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(byTotal(await decoded(handed.map((m) => ({ value: m.value }) as KafkaMessage)))).to.deep.equal(plain(inputs));
  });

  it('Avro with pseudonymous record keys and the subject in the value: the subject field holds the pseudonym, the deserializer still reads it, decrypt restores everything', async () => {
    const setup = avroSetup({ SHREDDER_RECORD_KEYS: 'pseudonym', SHREDDER_SUBJECT_FIELD: '$.customerId' });
    const v1 = await registerAvro(setup.input, CUSTOMER_V1);
    started(await startEncryptor(setup));
    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const inputs = [customer('alice', 1), customer('bob', 2), customer('alice', 3)];
    await produce(kafka, setup.input, await Promise.all(inputs.map(async (c) => ({ key: `order-${c.total}`, value: await registry.encode(v1, c) }))));
    const encrypted = await read(setup.output, 3);
    expect(encrypted.map((r) => r.key!.toString()).sort()).to.deep.equal(inputs.map((c) => `order-${c.total}`).sort()); // (the producer's keys: not subject ids)
    const values = await decoded(encrypted);
    for (const value of values) expect(value!.customerId).to.match(/^shp1:[A-Za-z0-9_-]{22}$/);
    for (const record of encrypted) for (const name of ['alice', 'bob']) expect(record.value!.includes(name), name).to.equal(false);
    const out = await read(decrypt.output, 3);
    expect([...(await decoded(out))].sort((a, b) => a!.total - b!.total)).to.deep.equal(plain(inputs));
  });

  it('Avro: after forget, the subject\'s fields are null where the schema allows it, else empty; every other field intact', async () => {
    const setup = avroSetup();
    const id = await registerAvro(setup.input, CUSTOMER_V1);
    started(await startEncryptor(setup));
    const inputs = [customer('alice', 1), customer('bob', 2), customer('alice', 7)];
    await produce(kafka, setup.input, await Promise.all(inputs.map(async (c) => ({ key: c.customerId, value: await registry.encode(id, c) }))));
    await read(setup.output, 3);
    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    await read(setup.output, 4);

    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const out = (await read(decrypt.output, 4)).filter((r) => r.value !== null);
    const alice = out.filter((r) => r.key!.toString() === 'alice');
    expect(alice.map((r) => header(r.headers, 'shredder.status'))).to.deep.equal(['shredded', 'shredded']);
    expect(header(alice[0].headers, 'shredder.shredded-fields')).to.equal('$.email,$.nickname,$.photo,$.address.street,$.phones[*],$.phones[*],$.preferences.secret');
    const [first, second] = (await decoded(alice)) as Customer[];
    expect(first).to.deep.equal(plain({ ...inputs[0], email: '', nickname: null, photo: Buffer.alloc(0), address: { street: '', city: 'Lyon' }, phones: ['', ''], preferences: { newsletter: 'no', secret: '' } }));
    expect(second).to.deep.equal(plain({ ...inputs[2], email: '', nickname: null, photo: Buffer.alloc(0), address: { street: '', city: 'Lyon' }, phones: ['', ''], preferences: { newsletter: 'no', secret: '' } }));
    const bob = out.filter((r) => r.key!.toString() === 'bob');
    expect(await decoded(bob)).to.deep.equal(plain([inputs[1]]));
  });

  it('JSON Schema: seals the selected and tagged properties; the usual deserializer validates and reads the encrypted topic; forget gives null where the schema allows it, else ""', async () => {
    const schema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: {
        customerId: { type: 'string' },
        email: { type: 'string' },
        phone: { type: ['string', 'null'], 'confluent:tags': ['PII'] },
        address: { $ref: '#/definitions/address' },
        total: { type: 'number' },
      },
      definitions: { address: { type: 'object', properties: { street: { type: 'string', 'confluent:tags': ['PII'] }, city: { type: 'string' } } } },
      required: ['customerId'],
    };
    const setup = encryptorSetup({ SHREDDER_SCHEMA_REGISTRY_URL: url, SHREDDER_FIELDS: '$.email', SHREDDER_FIELD_TAGS: 'PII' });
    const { id } = await registry.register({ type: SchemaType.JSON, schema: JSON.stringify(schema) }, { subject: `${setup.input}-value` });
    started(await startEncryptor(setup));
    const inputs = [
      { customerId: 'alice', email: 'alice@example.org', phone: '+33 1', address: { street: '1 Rabbit Hole', city: 'Lyon' }, total: 1.5 },
      { customerId: 'bob', email: 'bob@example.org', phone: null, address: { street: '2 Builder Way', city: 'Paris' }, total: 2 },
    ];
    await produce(kafka, setup.input, await Promise.all(inputs.map(async (c) => ({ key: c.customerId, value: await registry.encode(id, c) }))));
    const encrypted = await read(setup.output, 2);
    for (const [k, record] of encrypted.entries()) {
      for (const personal of ['example.org', '+33', 'Rabbit', 'Builder']) expect(record.value!.includes(personal)).to.equal(false);
      const value = (await registry.decode(record.value!)) as (typeof inputs)[number];
      expect([value.customerId, value.total, value.address.city]).to.deep.equal([inputs[k].customerId, inputs[k].total, inputs[k].address.city]);
      expect([value.email, value.address.street]).to.satisfy((sealed: string[]) => sealed.every((v) => v.startsWith('shr1:')));
    }
    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const out = (await read(decrypt.output, 3)).filter((r) => r.value !== null);
    const values = await Promise.all(out.map(async (r) => plain(await registry.decode(r.value!))));
    expect(values).to.deep.equal([{ ...inputs[0], email: '', phone: null, address: { street: '', city: 'Lyon' } }, inputs[1]]);
  });

  it('Protobuf: seals nested, repeated, map, oneof and bytes fields and tagged ones under the same frame; decrypt restores them; forget unsets or empties them', async () => {
    const proto = `syntax = "proto3";
package shop;
import "confluent/meta.proto";

message Order {
  string order_id = 1;
  string email = 2;
  message Address { string street = 1 [(confluent.field_meta).tags = "PII"]; string city = 2; }
  Address address = 3;
  repeated string phones = 4;
  map<string, string> notes = 5;
  oneof contact { string sms = 6; string pager = 7; }
  bytes signature = 8;
  int64 total_cents = 9;
  optional string coupon = 10;
}
`;
    const setup = encryptorSetup({ SHREDDER_SCHEMA_REGISTRY_URL: url, SHREDDER_FIELDS: '$.email,$.phones[*],$.notes[*],$.sms,$.signature,$.coupon', SHREDDER_FIELD_TAGS: 'PII' });
    const { id } = await registry.register({ type: SchemaType.PROTOBUF, schema: proto }, { subject: `${setup.input}-value` });
    const Order = protobuf.parse(proto, { keepCase: true }).root.lookupType('shop.Order');
    const orders = [
      { order_id: 'o-1', email: 'alice@example.org', address: { street: '1 Rabbit Hole', city: 'Lyon' }, phones: ['+33 1', '+33 2'], notes: { gate: 'code 1234' }, sms: '+33 6', signature: Buffer.from('alice-signature'), total_cents: Long.fromString('9007199254740993'), coupon: 'ALICE10' },
      { order_id: 'o-2', email: 'bob@example.org', address: { street: '2 Builder Way', city: 'Paris' }, phones: [], notes: {}, pager: 'bob-pager', signature: Buffer.alloc(0), total_cents: Long.fromNumber(250) },
    ];
    const encode = (order: object) => encodeProtobufFrame(id, [0], Order.encode(Order.fromObject(order)).finish());
    const decode = (value: Buffer) => Order.toObject(Order.decode(parseProtobufFrame(value).payload), { longs: String, bytes: String, defaults: false, oneofs: false });
    started(await startEncryptor(setup));
    await produce(kafka, setup.input, orders.map((order, k) => ({ key: k === 0 ? 'alice' : 'bob', value: encode(order) })));
    const encrypted = await read(setup.output, 2);
    for (const record of encrypted) {
      expect(parseProtobufFrame(record.value!).schemaId).to.equal(id);
      for (const personal of ['example.org', 'Rabbit', 'Builder', '+33', 'code 1234', 'signature', 'ALICE10']) expect(record.value!.includes(personal), personal).to.equal(false);
    }
    const sealedAlice = decode(encrypted[0].value!);
    expect([sealedAlice.order_id, sealedAlice.address.city, sealedAlice.total_cents]).to.deep.equal(['o-1', 'Lyon', '9007199254740993']);
    for (const sealed of [sealedAlice.email, sealedAlice.address.street, ...sealedAlice.phones, sealedAlice.notes.gate, sealedAlice.sms, sealedAlice.coupon]) expect(sealed).to.match(/^shr1:/);
    expect(decode(encrypted[1].value!).pager).to.equal('bob-pager'); // (not selected)

    const decrypt = decryptorSetup(setup);
    started(await startDecryptor(decrypt));
    const out = await read(decrypt.output, 2);
    expect(out.map((r) => decode(r.value!))).to.deep.equal(orders.map((order) => decode(encode(order))));

    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    const afterForget = decryptorSetup(setup);
    started(await startDecryptor(afterForget));
    const [alice] = (await read(afterForget.output, 3)).filter((r) => r.key!.toString() === 'alice' && r.value !== null);
    expect(header(alice.headers, 'shredder.status')).to.equal('shredded');
    // singular fields unset (a oneof member and an optional field have presence), elements and map values empty
    expect(decode(alice.value!)).to.deep.equal({ order_id: 'o-1', address: { city: 'Lyon' }, phones: ['', ''], notes: { gate: '' }, total_cents: '9007199254740993' });
  });

  it('reencrypt moves registry-framed records to a new keyspace field by field; verify-erasure proves a forgotten subject erased', async () => {
    const setup = avroSetup({ SHREDDER_ERASURE_DEADLINE_MS: '4000' });
    const id = await registerAvro(setup.input, CUSTOMER_V1);
    started(await startEncryptor(setup));
    const inputs = [customer('alice', 1), customer('bob', 2)];
    await produce(kafka, setup.input, await Promise.all(inputs.map(async (c) => ({ key: c.customerId, value: await registry.encode(id, c) }))));
    await requestForget(kafka, [setup.input], Buffer.from('alice'));
    const encrypted = await read(setup.output, 3);

    const newMasterKey = randomBytes(32);
    const migrated = uniqueName('migrated');
    const newKeysTopic = uniqueName('keys-v2');
    const reencryptor = new Reencryptor(
      loadConfig('reencrypt', {
        ...setup.env,
        SHREDDER_ROUTES: `${setup.output}->${migrated}`,
        SHREDDER_SOURCE_KEYS_TOPIC: setup.keysTopic,
        SHREDDER_KEYS_TOPIC: newKeysTopic,
        SHREDDER_GROUP_ID: uniqueName('reencrypt'),
        SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-reencrypt-')),
        SHREDDER_MASTER_KEY: '',
        SHREDDER_MASTER_KEYS: `1:${setup.masterKey.toString('base64')},2:${newMasterKey.toString('base64')}`,
        SHREDDER_MASTER_KEY_ID: '2',
      }),
      createLogger('silent'),
    );
    await reencryptor.start();
    started(reencryptor);
    const moved = await read(migrated, 3);
    const bobBefore = encrypted.find((r) => r.key?.toString() === 'bob')!;
    const bobAfter = moved.find((r) => r.key?.toString() === 'bob')!;
    expect(bobAfter.value!.readUInt32BE(1)).to.equal(id);
    const [sealedBefore, sealedAfter] = await decoded([bobBefore, bobAfter]);
    expect(sealedAfter!.email).to.match(/^shr1:/).and.not.equal(sealedBefore!.email); // under the new keyspace's key
    expect(sealedAfter!.total).to.equal(inputs[1].total);

    const decrypt = decryptorSetup(setup, { SHREDDER_ROUTES: `${migrated}->${uniqueName('decrypted')}`, SHREDDER_KEYS_TOPIC: newKeysTopic, SHREDDER_MASTER_KEY: newMasterKey.toString('base64'), SHREDDER_MASTER_KEY_ID: '2' });
    started(await startDecryptor(decrypt));
    const out = (await read(decrypt.output, 3)).filter((r) => r.value !== null);
    const values = await decoded(out);
    expect(values[out.findIndex((r) => r.key!.toString() === 'bob')]).to.deep.equal(plain(inputs[1]));
    const alice = out.findIndex((r) => r.key!.toString() === 'alice');
    expect(header(out[alice].headers, 'shredder.status')).to.equal('shredded'); // forgotten before the move: shredded in the new keyspace too
    expect(values[alice]).to.deep.equal(plain({ ...inputs[0], email: '', nickname: null, photo: Buffer.alloc(0), address: { street: '', city: 'Lyon' }, phones: ['', ''], preferences: { newsletter: 'no', secret: '' } }));

    const proof = await verifyErasure(setup.env, 'alice');
    expect(proof.code, proof.out).to.be.oneOf([0, 3]); // erased, or pending until compaction has run
    expect(JSON.parse(proof.out).status).to.be.oneOf(['erased', 'pending']);
  });

  it('a registry that is down dead-letters nothing: the batch waits, then goes on once it answers', async () => {
    const proxy = await switchableProxy(url);
    try {
      const setup = avroSetup({ SHREDDER_SCHEMA_REGISTRY_URL: proxy.url });
      const v1 = await registerAvro(setup.input, CUSTOMER_V1);
      started(await startEncryptor(setup));
      await produce(kafka, setup.input, [{ key: 'alice', value: await registry.encode(v1, customer('alice', 1)) }]);
      await read(setup.output, 1);
      // a schema the encryptor has not seen yet, while the registry is down
      const v2 = await registerAvro(setup.input, CUSTOMER_V2);
      proxy.down = true;
      await produce(kafka, setup.input, [{ key: 'alice', value: await registry.encode(v2, customer('alice', 2, { loyaltyCard: 'CARD-2' })) }]);
      await eventuallyTrue('the encryptor asked the registry for the new schema', () => proxy.refused > 0);
      await new Promise((r) => setTimeout(r, 3000));
      proxy.down = false;
      const encrypted = await read(setup.output, 2);
      expect(encrypted.map((r) => r.value!.readUInt32BE(1))).to.deep.equal([v1, v2]);
      expect(((await decoded([encrypted[1]]))[0]!).loyaltyCard).to.match(/^shr1:/);
      expect(await readTopic(kafka, setup.dlqTopic)).to.satisfy((dead: Map<number, KafkaMessage[]>) => allRecords(dead).length === 0);
    } finally {
      await proxy.close();
    }
  });

  it('dead-letters records naming made-up schema ids, asking the registry once per id however often they come', async () => {
    const proxy = await switchableProxy(url);
    try {
      const setup = avroSetup({ SHREDDER_SCHEMA_REGISTRY_URL: proxy.url });
      await registerAvro(setup.input, CUSTOMER_V1);
      started(await startEncryptor(setup));
      const before = proxy.requests;
      const junk = Array.from({ length: 300 }, (_, i) => ({ key: 'mallory', value: Buffer.from([0, 0x60, 0, (i % 100) >> 8, i % 100, 0x02, 0x41]) }));
      await produce(kafka, setup.input, junk);
      const dead = await read(setup.dlqTopic, 300);
      expect(new Set(dead.map((r) => header(r.headers, 'shredder.error')))).to.have.length(100);
      expect(proxy.requests - before).to.be.at.most(100);
    } finally {
      await proxy.close();
    }
  });

  it('refuses to start, exit 2, naming each field the latest schema cannot carry encrypted and each path that names no field', async () => {
    const setup = avroSetup({ SHREDDER_FIELDS: '$.email,$.total,$.address,$.emial', SHREDDER_FIELD_TAGS: '' });
    await registerAvro(setup.input, CUSTOMER_V1);
    let error: unknown;
    try {
      started(await startEncryptor(setup));
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).to.contain('$.total is of type double');
    expect(problems).to.contain('$.address is of type union [null, record shop.Address]');
    expect(problems).to.contain(`subject ${setup.input}-value version 1`);
    expect(problems).to.contain('SHREDDER_FIELDS: $.emial names no field');
    expect(problems).to.not.contain('$.email ');
  });

  it('dead-letters a record the registry has no schema for, and one that is not a registry frame, and goes on', async () => {
    const setup = avroSetup();
    const id = await registerAvro(setup.input, CUSTOMER_V1);
    started(await startEncryptor(setup));
    await produce(kafka, setup.input, [
      { key: 'alice', value: Buffer.from([0, 0x7f, 0xff, 0xff, 0x00, 1, 2]) },
      { key: 'alice', value: 'plain text' },
      { key: 'alice', value: await registry.encode(id, customer('alice', 1)) },
    ]);
    const dead = await read(setup.dlqTopic, 2);
    expect(dead.map((r) => header(r.headers, 'shredder.error'))).to.deep.equal([
      `schema id ${0x7fffff00} is not in the schema registry`,
      'value does not start with the schema registry magic byte 0x00',
    ]);
    const [encrypted] = await read(setup.output, 1);
    expect(((await registry.decode(encrypted.value!)) as Customer).customerId).to.equal('alice');
  });
});

/** `kafka-shredder verify-erasure <subject> --json`, as an auditor runs it. */
function verifyErasure(env: Record<string, string>, subject: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'verify-erasure', subject, '--json'], { env: { PATH: process.env.PATH, ...env } });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** An HTTP proxy to the registry that answers 503 while `down`, counting what it refused. */
async function switchableProxy(target: string): Promise<{ url: string; down: boolean; refused: number; requests: number; close(): Promise<void> }> {
  const base = new URL(target);
  const state = { down: false, refused: 0, requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    if (state.down) {
      state.refused++;
      res.writeHead(503).end();
      return;
    }
    const upstream = httpRequest({ host: base.hostname, port: base.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}${base.pathname}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

async function eventuallyTrue(what: string, check: () => boolean): Promise<void> {
  const until = Date.now() + 60_000;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function eventuallyAll<T>(received: T[], count: number): Promise<T[]> {
  const until = Date.now() + 60_000;
  while (received.length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  expect(received).to.have.length(count);
  return received;
}
