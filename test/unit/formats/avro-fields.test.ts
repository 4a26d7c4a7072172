// The Avro registry format through the seam every processor uses: selected string and bytes fields (by
// path or by `confluent:tags`) are sealed in place, the value stays Avro of the same schema id, and
// opening gives back every field, a shredded one as null or empty, and junk as a record error.
import avro from 'avsc';
import { expect } from 'chai';
import { isRecordError } from '../../../src/errors/shredder-errors.js';
import { parseJsonPath } from '../../../src/fields/json-path.js';
import { avroFields, longAsBigInt } from '../../../src/formats/registry/avro-fields.js';
import type { RegistrySelection, ResolvedSchema } from '../../../src/formats/registry/schema-fields.js';
import { encodeRegistryFrame } from '../../../src/wire/registry-framing.js';

const address = { type: 'record', name: 'Address', fields: [{ name: 'street', type: 'string', 'confluent:tags': ['PII'] }, { name: 'city', type: 'string' }] };
const customerSchema = {
  type: 'record',
  name: 'Customer',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'email', type: 'string' },
    { name: 'nickname', type: ['null', 'string'], default: null },
    { name: 'photo', type: 'bytes' },
    { name: 'address', type: ['null', address] },
    { name: 'phones', type: { type: 'array', items: 'string' } },
    { name: 'attributes', type: { type: 'map', values: 'string' } },
    { name: 'age', type: 'int' },
    { name: 'choice', type: ['null', { type: 'map', values: 'string' }, { type: 'record', name: 'Other', fields: [{ name: 'x', type: 'string' }] }], default: null },
  ],
};
const writer = avro.Type.forSchema(customerSchema as avro.Schema, { registry: { long: longAsBigInt as unknown as avro.Type } });
const schema: ResolvedSchema = { id: 7, schemaType: 'AVRO', schema: JSON.stringify(customerSchema), references: [], referenced: [] };
const customer = {
  id: 9007199254740993n,
  email: 'alice@example.org',
  nickname: 'ali',
  photo: Buffer.from([1, 2, 3]),
  address: { street: '1 Main St', city: 'Oslo' },
  phones: ['+47 1', '+47 2'],
  attributes: { eyes: 'blue', hair: 'red' },
  age: 42,
  choice: { 'shop.Other': { x: 'y' } },
};
const value = encodeRegistryFrame(7, writer.toBuffer(customer));
const select = (paths: string[], extra: Partial<RegistrySelection> = {}): RegistrySelection => ({ paths: paths.map(parseJsonPath), tags: [], ...extra });
const envelopeOf = (k: number) => Buffer.from([0x01, 0x01, 0xa0 + k, 0xff, 0x00]);
const decode = (framed: Buffer) => writer.fromBuffer(framed.subarray(5)) as typeof customer;

describe('the Avro registry format', () => {
  it('with a pseudonym, puts it in a string subject field (through a union too) and gives the subject id back; refuses a long one', () => {
    const pseudonym = Buffer.alloc(16, 0x3c);
    const token = `shp1:${pseudonym.toString('base64url')}`;
    const fields = avroFields.compile(schema, select(['$.email'], { subjectPath: parseJsonPath('$.nickname') }));
    const plain = fields.scanPlain(value);
    expect(Buffer.from(plain.subject!).toString()).to.equal('ali');
    const sealed = plain.withSealed([envelopeOf(0)], pseudonym);
    expect(decode(sealed)).to.deep.include({ nickname: token, email: `shr1:${envelopeOf(0).toString('base64url')}` });
    const read = fields.scanSealed(sealed);
    expect(Buffer.from(read.pseudonym!).equals(pseudonym)).to.equal(true);
    expect(read.withOpened([Buffer.from('alice@example.org')], Buffer.from('ali'))).to.deep.equal(value);
    expect(fields.scanSealed(value).pseudonym).to.equal(undefined);
    const byId = avroFields.compile(schema, select(['$.email'], { subjectPath: parseJsonPath('$.id') })).scanPlain(value);
    expect(() => byId.withSealed([envelopeOf(0)], pseudonym)).to.throw(/must be a string/);
  });

  it('seals string and bytes fields in place, through unions, arrays and maps, keeping the schema id and every other field', () => {
    const fields = avroFields.compile(schema, select(['$.email', '$.nickname', '$.photo', '$.address.street', '$.phones[*]', '$.attributes[*]', '$.choice.x']));
    expect(fields.problems).to.deep.equal([]);
    const plain = fields.scanPlain(value);
    expect(plain.fields.map((f) => [f.path.text, Buffer.from(f.plaintext).toString('hex')])).to.deep.equal([
      ['$.email', Buffer.from('alice@example.org').toString('hex')],
      ['$.nickname', Buffer.from('ali').toString('hex')],
      ['$.photo', '010203'],
      ['$.address.street', Buffer.from('1 Main St').toString('hex')],
      ['$.phones[*]', Buffer.from('+47 1').toString('hex')],
      ['$.phones[*]', Buffer.from('+47 2').toString('hex')],
      ['$.attributes[*]', Buffer.from('blue').toString('hex')],
      ['$.attributes[*]', Buffer.from('red').toString('hex')],
      ['$.choice.x', Buffer.from('y').toString('hex')],
    ]);
    const sealed = plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)));
    expect(sealed.subarray(0, 5)).to.deep.equal(value.subarray(0, 5));
    const record = decode(sealed);
    expect(record.email).to.equal(`shr1:${envelopeOf(0).toString('base64url')}`);
    expect(record.photo).to.deep.equal(Buffer.concat([Buffer.from('shr1:'), envelopeOf(2)]));
    expect(record.address.city).to.equal('Oslo');
    expect(record.id).to.equal(9007199254740993n);
    expect(record.age).to.equal(42);

    const opened = fields.scanSealed(sealed);
    expect(opened.fields.map((f) => f.envelope)).to.deep.equal(plain.fields.map((_, k) => envelopeOf(k)));
    const restored = opened.withOpened(plain.fields.map((f) => f.plaintext));
    expect(restored).to.deep.equal(value);
  });

  it('turns a shredded field into null where its union allows it, else an empty string or empty bytes', () => {
    const fields = avroFields.compile(schema, select(['$.email', '$.nickname', '$.photo']));
    const plain = fields.scanPlain(value);
    const sealed = fields.scanSealed(plain.withSealed(plain.fields.map((_, k) => envelopeOf(k))));
    const record = decode(sealed.withOpened([null, null, null]));
    expect([record.email, record.nickname, record.photo]).to.deep.equal(['', null, Buffer.alloc(0)]);
    expect(record.address.street).to.equal('1 Main St');
  });

  it('selects fields by confluent:tags, with the path they have in the schema', () => {
    const fields = avroFields.compile(schema, select([], { tags: ['PII'] }));
    expect(fields.encryptedPaths).to.deep.equal(['$.address.street']);
    expect(fields.scanPlain(value).fields.map((f) => f.path.text)).to.deep.equal(['$.address.street']);
  });

  it('refuses tags below a recursion, which no path reaches at every depth', () => {
    const tree = { type: 'record', name: 'Node', fields: [{ name: 'owner', type: 'string', 'confluent:tags': ['PII'] }, { name: 'children', type: { type: 'array', items: 'Node' } }] };
    const fields = avroFields.compile({ ...schema, schema: JSON.stringify(tree) }, select([], { tags: ['PII'] }));
    expect(fields.encryptedPaths).to.deep.equal(['$.owner']);
    expect(fields.problems).to.have.length(1);
    expect(fields.problems[0]).to.match(/^\$\.children\[\*\] holds record Node again/);
    const untagged = { ...tree, fields: [{ name: 'owner', type: 'string' }, tree.fields[1]] };
    expect(avroFields.compile({ ...schema, schema: JSON.stringify(untagged) }, select(['$.owner'], { tags: ['PII'] })).problems).to.deep.equal([]);
  });

  it('names each selected field that is not a string or bytes field, and what a path matches', () => {
    const fields = avroFields.compile(schema, select(['$.age', '$.address', '$.email', '$.nothing']));
    expect(fields.problems).to.have.length(2);
    expect(fields.problems[0]).to.match(/^\$\.address is of type union \[null, record shop\.Address\] in schema id 7: only string and bytes fields/);
    expect(fields.problems[1]).to.match(/^\$\.age is of type int in schema id 7/);
    expect([...fields.matchedPaths].sort()).to.deep.equal(['$.address', '$.age', '$.email']);
  });

  it('reads the subject from a string or a long field', () => {
    expect(Buffer.from(avroFields.compile(schema, select(['$.email'], { subjectPath: parseJsonPath('$.id') })).scanPlain(value).subject!).toString()).to.equal('9007199254740993');
    expect(Buffer.from(avroFields.compile(schema, select(['$.email'], { subjectPath: parseJsonPath('$.address.city') })).scanPlain(value).subject!).toString()).to.equal('Oslo');
    const taggedSubject = avroFields.compile(schema, select([], { tags: ['PII'], subjectPath: parseJsonPath('$.address.street') }));
    expect(taggedSubject.problems).to.deep.equal(['$.address.street (the subject field) is tagged, in $.address.street, and would be encrypted in schema id 7: the subject must stay readable']);
    const noSubject = avroFields.compile(schema, select(['$.email'], { subjectPath: parseJsonPath('$.nickname') }));
    const anonymous = encodeRegistryFrame(7, writer.toBuffer({ ...customer, nickname: null }));
    expect(() => noSubject.scanPlain(anonymous)).to.throw(/no subject: \$\.nickname/);
  });

  it('makes any junk a record error, fast: truncated, trailing bytes, a block count past the end, a union index out of range', () => {
    const fields = avroFields.compile(schema, select(['$.email']));
    const payload = writer.toBuffer(customer);
    const hugeArray = Buffer.concat([payload.subarray(0, 8), Buffer.from([0x00]), Buffer.from('aaaaaaaaaaaaaaaaaa'), Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x1f])]);
    const junk = [payload.subarray(0, payload.length - 1), Buffer.concat([payload, Buffer.from([0])]), hugeArray, Buffer.from([0xff, 0xff, 0xff]), Buffer.alloc(0)];
    for (const bytes of junk) {
      const started = process.hrtime.bigint();
      let error: unknown;
      try {
        fields.scanPlain(encodeRegistryFrame(7, bytes));
      } catch (err) {
        error = err;
      }
      expect(isRecordError(error), String(error)).to.equal(true);
      expect(Number(process.hrtime.bigint() - started) / 1e6).to.be.below(1000);
    }
  });

  it('refuses a schema that is not Avro as the record\'s fault, naming its id', () => {
    expect(() => avroFields.compile({ ...schema, schema: '{"type":"record"}' }, select(['$.email']))).to.throw(/schema id 7 is not an Avro schema/);
  });
});
