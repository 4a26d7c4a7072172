// The Protobuf registry format: a registered .proto file (with its references) compiled against the
// field selection finds the selected fields of a framed value, seals them in place so the value stays a
// message of its schema, and opens them back to the same message, or to a cleared field when shredded.
// Records are written with protobufjs itself and framed as a registry serializer frames them.
import { expect } from 'chai';
import protobuf, { type Type } from 'protobufjs';
import { isRecordError } from '../../../src/errors/shredder-errors.js';
import { parseJsonPath } from '../../../src/fields/json-path.js';
import { protobufFields } from '../../../src/formats/registry/protobuf-fields.js';
import type { ResolvedSchema, SchemaFields } from '../../../src/formats/registry/schema-fields.js';
import { encodeProtobufFrame, parseProtobufFrame } from '../../../src/wire/registry-framing.js';

const SCHEMA_ID = 7;

const MONEY_PROTO = `syntax = "proto3";
package shop.common;
message Money { string currency = 1; int64 cents = 2; }
`;

const SHOP_PROTO = `syntax = "proto3";
package shop;
import "confluent/meta.proto";
import "google/protobuf/timestamp.proto";
import "money.proto";

message Customer {
  string userId = 1;
  string email = 2;
  int32 age = 3;
  optional string nickname = 4;
  oneof contact {
    string phone = 5;
    bytes fax = 6;
  }
  map<string, string> notes = 7;
  repeated string phones = 8;
  Address address = 9;
  int64 balance = 10;
  bytes photo = 11;
  string ssn = 12 [(confluent.field_meta).tags = "PII", (confluent.field_meta).tags = "GOV"];
  repeated Address previous = 13;
  google.protobuf.Timestamp since = 14;
  common.Money credit = 15;
  int64 accountId = 16;
  Status status = 17;

  message Address {
    string street = 1;
    string city = 2;
    string zip = 3 [(confluent.field_meta) = { tags: ["PII"] }];
  }
}

enum Status { ACTIVE = 0; CLOSED = 1; }

message Order {
  string orderId = 1;
  string customerEmail = 2;
  int32 total = 3;
}
`;

/** Confluent's confluent/meta.proto, as a registry may hold it: it extends a descriptor nobody references. */
const META_PROTO = `syntax = "proto3";
package confluent;
import "google/protobuf/descriptor.proto";
message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; }
extend google.protobuf.FieldOptions { Meta field_meta = 1088; }
`;

function registered(schema: string, referenced: { name: string; schema: string }[] = [{ name: 'money.proto', schema: MONEY_PROTO }]): ResolvedSchema {
  return {
    id: SCHEMA_ID,
    schemaType: 'PROTOBUF',
    schema,
    references: referenced.map((reference) => ({ name: reference.name, subject: reference.name, version: 1 })),
    referenced: referenced.map((reference, k) => ({ name: reference.name, schema: { id: 100 + k, schemaType: 'PROTOBUF', schema: reference.schema, references: [] } })),
  };
}

function compile(paths: string[], options: { tags?: string[]; subject?: string; schema?: ResolvedSchema } = {}): SchemaFields {
  return protobufFields.compile(options.schema ?? registered(SHOP_PROTO), {
    paths: paths.map(parseJsonPath),
    tags: options.tags ?? [],
    subjectPath: options.subject === undefined ? undefined : parseJsonPath(options.subject),
  });
}

/** The test's own view of the schema, to write and read records. */
const root = new protobuf.Root();
protobuf.parse(MONEY_PROTO, root, { keepCase: true });
protobuf.parse(SHOP_PROTO, root, { keepCase: true });
root.addJSON(protobuf.common.get('google/protobuf/timestamp.proto')!.nested!);
const Customer = root.lookupType('shop.Customer');
const Address = root.lookupType('shop.Customer.Address');
const Order = root.lookupType('shop.Order');

const BIG = '9007199254740993'; // 2^53 + 1: not a double
const customer = {
  userId: 'u-7',
  email: 'alice@example.org',
  age: 41,
  nickname: 'ali',
  phone: '+47 555 0100',
  notes: { vip: 'yes', allergy: 'nuts' },
  phones: ['+47 1', '+47 2'],
  address: { street: '1 Main St', city: 'Oslo', zip: '0150' },
  balance: BIG,
  photo: Buffer.from([0x89, 0x50, 0x4e, 0x47]),
  ssn: '010203-12345',
  previous: [{ street: '2 Old Rd', zip: '0151' }, { city: 'Bergen', zip: '5003' }],
  since: { seconds: 1_700_000_000, nanos: 5 },
  credit: { currency: 'NOK', cents: 1250 },
  accountId: BIG,
  status: 1,
};

function frame(type: Type, message: object, indexes: number[] = [0]): Buffer {
  return encodeProtobufFrame(SCHEMA_ID, indexes, type.encode(type.fromObject(message)).finish());
}

/** A framed value's message, as plain data for deep comparison (longs as decimal text). */
function decoded(type: Type, value: Uint8Array): Record<string, unknown> {
  const { payload } = parseProtobufFrame(value);
  return type.toObject(type.decode(payload), { longs: String, bytes: Array, oneofs: true });
}

/** Stand-ins for envelopes: any bytes, distinct per field (the format carries them, it does not open them). */
const envelopeOf = (k: number) => Buffer.from([0x01, 0x01, 0xa0 + k, 0xff, 0x00]);
const sealedText = (k: number) => `shr1:${envelopeOf(k).toString('base64url')}`;
const sealedBytes = (k: number) => [...Buffer.from('shr1:', 'latin1'), ...envelopeOf(k)];

/** The message of the RecordError `run` throws; fails the test on any other outcome. */
function recordErrorOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(isRecordError(err), String(err)).to.equal(true);
    return (err as Error).message;
  }
  expect.fail('no error');
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  for (; value >= 0x80; value >>>= 7) bytes.push((value & 0x7f) | 0x80);
  bytes.push(value);
  return Buffer.from(bytes);
}

function sealAll(fields: SchemaFields, value: Uint8Array): Buffer {
  const plain = fields.scanPlain(value);
  return plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)));
}

describe('the Protobuf registry format', () => {
  const paths = ['$.email', '$.address.street', '$.phones[*]', '$.notes[*]', '$.phone', '$.photo', '$.nickname'];

  it('finds nested, repeated, map, oneof and bytes fields, and the subject, and seals each in place', () => {
    const fields = compile(paths, { subject: '$.userId' });
    expect(fields.problems).to.deep.equal([]);
    expect([...fields.matchedPaths]).to.deep.equal(paths);
    expect(fields.encryptedPaths).to.deep.equal(paths);
    const value = frame(Customer, customer);
    const plain = fields.scanPlain(value);
    expect(Buffer.from(plain.subject!).toString()).to.equal('u-7');
    expect(plain.fields.map((f) => [f.path.text, Buffer.from(f.plaintext).toString('latin1')])).to.deep.equal([
      ['$.email', 'alice@example.org'],
      ['$.nickname', 'ali'],
      ['$.phone', '+47 555 0100'],
      ['$.notes[*]', 'yes'],
      ['$.notes[*]', 'nuts'],
      ['$.phones[*]', '+47 1'],
      ['$.phones[*]', '+47 2'],
      ['$.address.street', '1 Main St'],
      ['$.photo', '\x89PNG'],
    ]);
    const sealed = plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)));
    expect(sealed.subarray(0, 6).equals(value.subarray(0, 6))).to.equal(true); // header kept
    expect(decoded(Customer, sealed)).to.deep.include({
      userId: 'u-7',
      email: sealedText(0),
      nickname: sealedText(1),
      phone: sealedText(2),
      contact: 'phone',
      notes: { vip: sealedText(3), allergy: sealedText(4) },
      phones: [sealedText(5), sealedText(6)],
      address: { street: sealedText(7), city: 'Oslo', zip: '0150' },
      photo: sealedBytes(8),
      age: 41,
      balance: BIG,
    });
  });

  it('with a pseudonym, puts it in the subject field and gives the subject id back; refuses an integer subject field', () => {
    const fields = compile(paths, { subject: '$.userId' });
    const value = frame(Customer, customer);
    const pseudonym = Buffer.alloc(16, 0x5a);
    const plain = fields.scanPlain(value);
    const sealed = plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)), pseudonym);
    expect(decoded(Customer, sealed)).to.deep.include({ userId: `shp1:${pseudonym.toString('base64url')}`, email: sealedText(0) });
    const read = fields.scanSealed(sealed);
    expect(Buffer.from(read.pseudonym!).equals(pseudonym)).to.equal(true);
    expect(decoded(Customer, read.withOpened(plain.fields.map((f) => f.plaintext), Buffer.from('u-7')))).to.deep.equal(decoded(Customer, value));
    expect(fields.scanSealed(value).pseudonym).to.equal(undefined);
    // (nothing to seal: the subject field still takes the pseudonym)
    const bare = compile(['$.email'], { subject: '$.userId' }).scanPlain(frame(Customer, { userId: 'u-8' }));
    expect(decoded(Customer, bare.withSealed([], pseudonym)).userId).to.equal(`shp1:${pseudonym.toString('base64url')}`);
    const numeric = compile(['$.email'], { subject: '$.accountId' }).scanPlain(frame(Customer, { ...customer, accountId: BIG }));
    expect(() => numeric.withSealed([envelopeOf(0)], pseudonym)).to.throw(/must be a string/);
  });

  it('gives each field the configured path, the same object for every value', () => {
    const fields = compile(paths);
    const first = fields.scanPlain(frame(Customer, customer)).fields;
    const second = fields.scanPlain(frame(Customer, { ...customer, phones: ['+1', '+2', '+3'] })).fields;
    const phonesPath = first.find((f) => f.path.text === '$.phones[*]')!.path;
    expect(second.filter((f) => f.path.text === '$.phones[*]').every((f) => f.path === phonesPath)).to.equal(true);
    expect(first[0].path).to.equal(second[0].path);
  });

  it('opens back to the same message, int64 fields and all', () => {
    const fields = compile(paths, { subject: '$.userId' });
    const value = frame(Customer, customer);
    const plain = fields.scanPlain(value);
    const sealedValue = fields.scanSealed(plain.withSealed(plain.fields.map((_, k) => envelopeOf(k))));
    expect(Buffer.from(sealedValue.subject!).toString()).to.equal('u-7');
    expect(sealedValue.fields.map((f) => f.path.text)).to.deep.equal(plain.fields.map((f) => f.path.text));
    expect(sealedValue.fields.map((f, k) => Buffer.from(f.envelope!).equals(envelopeOf(k)))).to.deep.equal(plain.fields.map(() => true));
    const opened = sealedValue.withOpened(plain.fields.map((f) => f.plaintext));
    expect(decoded(Customer, opened)).to.deep.equal(decoded(Customer, value));
    expect(decoded(Customer, opened).balance).to.equal(BIG);
    expect(opened.subarray(0, 6).equals(value.subarray(0, 6))).to.equal(true);
  });

  it('leaves fields that were never encrypted as they are', () => {
    const fields = compile(paths);
    const value = frame(Customer, customer);
    const sealedValue = fields.scanSealed(value);
    expect(sealedValue.fields.map((f) => f.envelope)).to.deep.equal(sealedValue.fields.map(() => undefined));
    expect(sealedValue.withOpened(sealedValue.fields.map(() => undefined)).equals(value)).to.equal(true); // not even re-encoded
    expect(compile(['$.nothing']).scanPlain(value).withSealed([]).equals(value)).to.equal(true);
  });

  it('clears a shredded field: unset where it has presence, the default otherwise, "" for a list element', () => {
    const fields = compile(paths);
    const sealedValue = fields.scanSealed(sealAll(fields, frame(Customer, customer)));
    const opened = sealedValue.withOpened(sealedValue.fields.map(() => null));
    const message = Customer.decode(parseProtobufFrame(opened).payload) as unknown as Record<string, unknown>;
    for (const name of ['nickname', 'phone', 'email', 'photo']) expect(Object.hasOwn(message, name), name).to.equal(false);
    expect(message.contact).to.equal(undefined); // the oneof is unset
    expect(message.email).to.equal(''); // a proto3 string without presence reads as its default
    expect(message.phones).to.deep.equal(['', '']);
    expect(message.notes).to.deep.equal({ vip: '', allergy: '' });
    expect((message.address as Record<string, unknown>).street).to.equal('');
    expect((message.address as Record<string, unknown>).city).to.equal('Oslo');
  });

  it('opens a shredded field and an opened one side by side', () => {
    const fields = compile(['$.email', '$.fax']);
    const value = frame(Customer, { ...customer, phone: undefined, fax: Buffer.from([1, 2, 3]) });
    const plain = fields.scanPlain(value);
    expect(plain.fields.map((f) => f.path.text)).to.deep.equal(['$.email', '$.fax']);
    const sealedValue = fields.scanSealed(plain.withSealed([envelopeOf(0), envelopeOf(1)]));
    expect(decoded(Customer, sealedValue.withOpened([plain.fields[0].plaintext, null]))).to.deep.include({ email: 'alice@example.org' }).and.not.have.property('fax');
    const faxOnly = decoded(Customer, sealedValue.withOpened([null, plain.fields[1].plaintext]));
    expect(faxOnly).to.deep.include({ fax: [1, 2, 3], contact: 'fax' });
    expect(faxOnly).not.to.have.property('email');
  });

  it('selects the fields tagged (confluent.field_meta).tags, in either option form, with their paths', () => {
    const fields = compile([], { tags: ['PII'] });
    expect(fields.problems).to.deep.equal([]);
    expect(fields.encryptedPaths).to.have.members(['$.ssn', '$.address.zip', '$.previous[*].zip']);
    const plain = fields.scanPlain(frame(Customer, customer));
    expect(plain.fields.map((f) => [f.path.text, Buffer.from(f.plaintext).toString()])).to.deep.equal([
      ['$.address.zip', '0150'],
      ['$.ssn', '010203-12345'],
      ['$.previous[*].zip', '0151'],
      ['$.previous[*].zip', '5003'],
    ]);
    const again = fields.scanPlain(frame(Customer, customer));
    expect(again.fields.map((f) => f.path)).to.deep.equal(plain.fields.map((f) => f.path));
    expect(again.fields[2].path).to.equal(plain.fields[2].path); // one object per derived path
    expect(compile([], { tags: ['GOV'] }).encryptedPaths).to.deep.equal(['$.ssn']); // a repeated tags option
    expect(compile([], { tags: ['OTHER'] }).scanPlain(frame(Customer, customer)).fields).to.deep.equal([]);
    // a configured path and a tag naming the same field: one field, the configured path
    expect(compile(['$.ssn'], { tags: ['PII'] }).scanPlain(frame(Customer, customer)).fields.filter((f) => f.path.text === '$.ssn')).to.have.length(1);
  });

  it('parses confluent/meta.proto when it is referenced, and does without it when it is not', () => {
    const withMeta = compile([], { tags: ['PII'], schema: registered(SHOP_PROTO, [{ name: 'confluent/meta.proto', schema: META_PROTO }, { name: 'money.proto', schema: MONEY_PROTO }]) });
    expect(withMeta.encryptedPaths).to.have.members(['$.ssn', '$.address.zip', '$.previous[*].zip']);
    expect(withMeta.scanPlain(frame(Customer, customer)).fields).to.have.length(4);
  });

  it('follows tagged fields through a recursive type as deep as the value goes, and refuses past 32 levels', () => {
    const thread = `syntax = "proto3";
message Comment {
  string author = 1 [(confluent.field_meta).tags = "PII"];
  string text = 2;
  repeated Comment replies = 3;
}`;
    const fields = compile([], { tags: ['PII'], schema: registered(thread, []) });
    expect(fields.encryptedPaths).to.deep.equal(['$.author']);
    const threadRoot = protobuf.parse(thread, { keepCase: true }).root;
    const Comment = threadRoot.lookupType('Comment');
    const value = frame(Comment, { author: 'a', replies: [{ author: 'b', replies: [{ author: 'c' }] }, { text: 'no author' }] });
    expect(fields.scanPlain(value).fields.map((f) => [f.path.text, Buffer.from(f.plaintext).toString()])).to.deep.equal([
      ['$.author', 'a'],
      ['$.replies[*].author', 'b'],
      ['$.replies[*].replies[*].author', 'c'],
    ]);
    let deep: object = { author: 'deepest' };
    for (let i = 0; i < 40; i++) deep = { replies: [deep] };
    expect(recordErrorOf(() => fields.scanPlain(frame(Comment, deep)))).to.match(/nested deeper than 32 messages/);
    // deeper than protobufjs reads (100): not Protobuf it takes, whatever is selected
    // (written by hand: protobufjs does not write that deep either)
    let deeper = Buffer.alloc(0);
    for (let i = 0; i < 150; i++) deeper = Buffer.concat([Buffer.from([0x1a]), varint(deeper.length), deeper]); // replies (3), length-delimited
    const tooDeep = encodeProtobufFrame(SCHEMA_ID, [0], deeper);
    expect(recordErrorOf(() => compile(['$.text'], { schema: registered(thread, []) }).scanPlain(tooDeep))).to.match(/^not Protobuf of schema id 7: max depth exceeded/);
  });

  it('reads the message type from the frame: [1] the second top-level message, [0, 0] the first nested one', () => {
    const fields = compile(['$.customerEmail', '$.street']);
    expect(fields.problems).to.deep.equal([]);
    expect([...fields.matchedPaths]).to.have.members(['$.customerEmail', '$.street']);
    const order = fields.scanPlain(frame(Order, { orderId: 'o-1', customerEmail: 'bob@example.org', total: 3 }, [1]));
    expect(order.fields.map((f) => [f.path.text, Buffer.from(f.plaintext).toString()])).to.deep.equal([['$.customerEmail', 'bob@example.org']]);
    const sealed = order.withSealed([envelopeOf(0)]);
    expect(parseProtobufFrame(sealed).messageIndexes).to.deep.equal([1]);
    expect(decoded(Order, sealed)).to.deep.equal({ orderId: 'o-1', customerEmail: sealedText(0), total: 3 });
    const address = fields.scanPlain(frame(Address, { street: '3 Side St', city: 'Oslo' }, [0, 0]));
    expect(address.fields.map((f) => [f.path.text, Buffer.from(f.plaintext).toString()])).to.deep.equal([['$.street', '3 Side St']]);
    expect(recordErrorOf(() => fields.scanPlain(frame(Order, {}, [2])))).to.equal('message indexes [2] name no message of schema id 7');
    expect(recordErrorOf(() => fields.scanPlain(frame(Order, {}, [1, 0])))).to.equal('message indexes [1, 0] name no message of schema id 7');
  });

  it('reads the subject from a string or an integer field, int64 in full', () => {
    const value = frame(Customer, customer);
    expect(Buffer.from(compile(['$.email'], { subject: '$.accountId' }).scanPlain(value).subject!).toString()).to.equal(BIG);
    expect(Buffer.from(compile(['$.email'], { subject: '$.address.city' }).scanPlain(value).subject!).toString()).to.equal('Oslo');
    expect(Buffer.from(compile(['$.email'], { subject: '$.phones[1]' }).scanPlain(value).subject!).toString()).to.equal('+47 2');
    expect(compile(['$.email']).scanPlain(value).subject).to.equal(undefined);
    const fields = compile(['$.email'], { subject: '$.userId' });
    expect(recordErrorOf(() => fields.scanPlain(frame(Customer, { ...customer, userId: '' })))).to.equal('no subject: $.userId is missing from the value');
    expect(recordErrorOf(() => compile(['$.email'], { subject: '$.address.city' }).scanSealed(frame(Customer, { userId: 'u' })))).to.equal('no subject: $.address.city is missing from the value');
  });

  it('keeps an int64 field that is not selected exact through sealing and opening', () => {
    const fields = compile(['$.email']);
    const sealed = sealAll(fields, frame(Customer, { balance: BIG, credit: { cents: '-' + BIG }, email: 'e' }));
    expect(decoded(Customer, sealed)).to.deep.include({ balance: BIG, credit: { cents: '-' + BIG } });
    const sealedValue = fields.scanSealed(sealed);
    expect(decoded(Customer, sealedValue.withOpened([Buffer.from('e')]))).to.deep.include({ balance: BIG, email: 'e' });
  });

  it('keeps fields the schema does not know', () => {
    const fields = compile(['$.email']);
    const payload = Buffer.concat([Customer.encode(Customer.fromObject({ email: 'e' })).finish(), Buffer.from([0xf8, 0x06, 0x05])]); // field 111, varint 5
    const sealed = sealAll(fields, encodeProtobufFrame(SCHEMA_ID, [0], payload));
    expect(parseProtobufFrame(sealed).payload.subarray(-3)).to.deep.equal(Buffer.from([0xf8, 0x06, 0x05]));
    const opened = fields.scanSealed(sealed).withOpened([Buffer.from('e')]);
    expect(parseProtobufFrame(opened).payload.equals(payload)).to.equal(true);
  });

  it('names each selected field that is not string or bytes as a problem, and a value of it as a record error', () => {
    const fields = compile(['$.age', '$.address', '$.status', '$.phones', '$.notes[*]', '$.nothing', '$.address.nothing', '$.phones.x']);
    expect(fields.problems).to.deep.equal([
      '$.age is an int32 field of message shop.Customer: only string and bytes fields can be encrypted',
      '$.address is a message shop.Customer.Address field of message shop.Customer: only string and bytes fields can be encrypted',
      '$.status is an enum shop.Status field of message shop.Customer: only string and bytes fields can be encrypted',
      '$.phones is a repeated string field of message shop.Customer: name its elements to encrypt them, $.phones[*]',
    ]);
    expect([...fields.matchedPaths]).to.deep.equal(['$.age', '$.address', '$.status', '$.phones', '$.notes[*]']);
    expect(fields.encryptedPaths).to.deep.equal(['$.notes[*]']);
    expect(recordErrorOf(() => fields.scanPlain(frame(Customer, customer)))).to.match(/^schema id 7, message shop.Customer: \$\.age is an int32 field/);
    // a problem of another message type is that type's values' own
    const orderOnly = compile(['$.total']);
    expect(orderOnly.problems).to.deep.equal([]);
    expect(orderOnly.matchedPaths.has('$.total')).to.equal(true);
    expect(recordErrorOf(() => orderOnly.scanPlain(frame(Order, { total: 1 }, [1])))).to.match(/\$\.total is an int32 field of message shop\.Order/);
  });

  it('names a subject field no value could give, or one a tag would encrypt, as a problem', () => {
    expect(compile(['$.email'], { subject: '$.nobody' }).problems).to.deep.equal(['$.nobody (the subject field) names no field of message shop.Customer']);
    expect(compile(['$.email'], { subject: '$.photo' }).problems).to.deep.equal([
      '$.photo (the subject field) is a bytes field of message shop.Customer: the subject must be a string or integer field',
    ]);
    expect(compile([], { tags: ['PII'], subject: '$.address.zip' }).problems).to.deep.equal([
      '$.address.zip (the subject field) is tagged PII and would be encrypted: the subject must stay readable',
    ]);
  });

  it('refuses what is not a Protobuf value of the schema as a record error, never naming its bytes', () => {
    const fields = compile(paths, { subject: '$.userId' });
    const junk = encodeProtobufFrame(SCHEMA_ID, [0], Buffer.from([0x0a, 0x7f, 0x41, 0x42]));
    expect(recordErrorOf(() => fields.scanPlain(junk))).to.match(/^not Protobuf of schema id 7: index out of range/);
    expect(recordErrorOf(() => fields.scanSealed(encodeProtobufFrame(SCHEMA_ID, [0], Buffer.from([0x12, 0x02, 0xff, 0xfe]))))).to.match(/^not Protobuf of schema id 7: /);
    expect(recordErrorOf(() => fields.scanPlain(Buffer.from([0x01, 0x02])))).to.match(/magic byte/);
    expect(recordErrorOf(() => fields.scanPlain(Buffer.from([0x00, 0, 0, 0, 7])))).to.match(/message indexes/);
    // whatever the bytes, a record error or a scan
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    const base = frame(Customer, customer);
    for (let i = 0; i < 2000; i++) {
      const value = Buffer.from(base);
      for (let j = 0; j < 3; j++) value[6 + (random() * 256 + random()) % (value.length - 6)] = random();
      const cut = i % 3 === 0 ? value.subarray(0, 6 + (random() % (value.length - 6))) : value;
      try {
        const plain = fields.scanPlain(cut);
        plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)));
        fields.scanSealed(cut).withOpened([]);
      } catch (err) {
        if (!isRecordError(err)) throw err;
      }
    }
  });

  it('refuses a decrypted string field that is not UTF-8', () => {
    const fields = compile(['$.email']);
    const sealedValue = fields.scanSealed(sealAll(fields, frame(Customer, customer)));
    expect(recordErrorOf(() => sealedValue.withOpened([Buffer.from([0xff, 0xfe])]))).to.equal('the decrypted string field $.email is not valid UTF-8');
  });

  it('refuses a schema that does not parse, naming its id, and resolves well-known imports', () => {
    expect(recordErrorOf(() => compile(['$.email'], { schema: registered('syntax = "proto3"; message {') }))).to.match(/^schema id 7: its \.proto text does not parse/);
    expect(recordErrorOf(() => compile(['$.email'], { schema: registered(SHOP_PROTO, []) }))).to.match(/^schema id 7: message shop.Customer does not compile/);
    const fields = compile(['$.email']);
    const since = decoded(Customer, sealAll(fields, frame(Customer, customer))).since;
    expect(since).to.deep.equal({ seconds: '1700000000', nanos: 5 });
  });
});
