// The JSON Schema registry format: the payload after the frame header is sealed field by field as in
// JSON field mode, the schema picks the fields (configured paths and `confluent:tags`), says which ones
// cannot hold an encrypted string, and what a shredded field becomes; the header stays byte for byte.
import { expect } from 'chai';
import { isRecordError } from '../../../src/errors/shredder-errors.js';
import { parseJsonPath } from '../../../src/fields/json-path.js';
import { jsonSchemaFields } from '../../../src/formats/registry/json-schema-fields.js';
import type { RegistrySelection, ResolvedSchema, SchemaFields } from '../../../src/formats/registry/schema-fields.js';
import { encodeRegistryFrame } from '../../../src/wire/registry-framing.js';

const SCHEMA_ID = 0x01020304;

function schemaOf(schema: unknown, referenced: { name: string; schema: unknown }[] = [], id = SCHEMA_ID): ResolvedSchema {
  return {
    id,
    schemaType: 'JSON',
    schema: typeof schema === 'string' ? schema : JSON.stringify(schema),
    references: referenced.map((r, k) => ({ name: r.name, subject: r.name, version: k + 1 })),
    referenced: referenced.map((r, k) => ({ name: r.name, schema: { id: 100 + k, schemaType: 'JSON', schema: JSON.stringify(r.schema), references: [] } })),
  };
}

function compile(schema: ResolvedSchema, paths: string[] = [], tags: string[] = [], subjectField?: string): SchemaFields {
  const selection: RegistrySelection = { paths: paths.map(parseJsonPath), tags, subjectPath: subjectField ? parseJsonPath(subjectField) : undefined };
  return jsonSchemaFields.compile(schema, selection);
}

const framed = (json: string, id = SCHEMA_ID) => encodeRegistryFrame(id, Buffer.from(json, 'utf8'));
/** Stand-ins for envelopes: any bytes, distinct per field (the format carries them, it does not open them). */
const envelopeOf = (k: number) => Buffer.from([0x01, 0x01, 0xa0 + k, 0xff, 0x00]);
const token = (k: number) => `shr1:${envelopeOf(k).toString('base64url')}`;

/** Seals every selected field with its stand-in envelope. */
function seal(fields: SchemaFields, value: Buffer): Buffer {
  const plain = fields.scanPlain(value);
  return plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)));
}

const payloadOf = (value: Buffer) => JSON.parse(value.subarray(5).toString('utf8')) as unknown;

function recordErrorOf(action: () => unknown): string {
  try {
    action();
  } catch (err) {
    expect(isRecordError(err), String(err)).to.equal(true);
    return (err as Error).message;
  }
  return 'no error';
}

const userSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: {
    userId: { type: 'string' },
    email: { type: 'string' },
    age: { type: 'integer' },
    nickname: { type: ['string', 'null'] },
    address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
    phones: { type: 'array', items: { type: 'string' } },
  },
};

describe('the JSON Schema registry format', () => {
  it('is the JSON schema type', () => {
    expect(jsonSchemaFields.schemaType).to.equal('JSON');
  });

  it('seals the configured paths as JSON field mode does, finds the subject, and keeps the header byte for byte', () => {
    const fields = compile(schemaOf(userSchema), ['$.email', '$.address.street', '$.phones[*]'], [], '$.userId');
    expect(fields.problems).to.deep.equal([]);
    expect([...fields.matchedPaths]).to.deep.equal(['$.email', '$.address.street', '$.phones[*]']);
    expect(fields.encryptedPaths).to.deep.equal(['$.email', '$.address.street', '$.phones[*]']);

    const value = framed('{"userId":"u-7","email":"alice@example.org","address":{"street":"1 Main St","city":"Oslo"},"phones":["+47 1","+47 2"],"age":41}');
    const plain = fields.scanPlain(value);
    expect(Buffer.from(plain.subject!).toString()).to.equal('u-7');
    expect(plain.fields.map((f) => [f.path.text, Buffer.from(f.plaintext).toString()])).to.deep.equal([
      ['$.email', '"alice@example.org"'],
      ['$.address.street', '"1 Main St"'],
      ['$.phones[*]', '"+47 1"'],
      ['$.phones[*]', '"+47 2"'],
    ]);
    const sealed = plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)));
    expect(sealed.subarray(0, 5).equals(Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04]))).to.equal(true);
    expect(payloadOf(sealed)).to.deep.equal({
      userId: 'u-7',
      email: token(0),
      address: { street: token(1), city: 'Oslo' },
      phones: [token(2), token(3)],
      age: 41,
    });
  });

  it('opens a sealed value back to the input bytes exactly, whitespace, escapes and number spellings included', () => {
    const fields = compile(schemaOf(userSchema), ['$.email', '$.address', '$.nickname']);
    const value = framed('{ "email" : "al\\u0069ce@example.org",\n  "address": {"street": "1 Main St", "city": "Troms\u00f8"}, "nickname": null, "age": 4.10e1 }');
    const plain = fields.scanPlain(value);
    const sealed = fields.scanSealed(plain.withSealed(plain.fields.map((_, k) => envelopeOf(k))));
    expect(sealed.fields.map((f) => Buffer.from(f.envelope!).equals(envelopeOf(sealed.fields.indexOf(f))))).to.deep.equal([true, true, true]);
    expect(sealed.withOpened(plain.fields.map((f) => f.plaintext)).equals(value)).to.equal(true);
  });

  it('leaves a field that was never encrypted as it is', () => {
    const fields = compile(schemaOf(userSchema), ['$.email']);
    const value = framed('{"email":"alice@example.org"}');
    const sealed = fields.scanSealed(value);
    expect(sealed.fields.map((f) => f.envelope)).to.deep.equal([undefined]);
    expect(sealed.withOpened([undefined]).equals(value)).to.equal(true);
  });

  it('opens a shredded field to null where its schema allows null or gives no type, else to ""', () => {
    const schema = schemaOf({
      type: 'object',
      properties: {
        email: { type: 'string' },
        nickname: { type: ['string', 'null'] },
        note: { description: 'no type given' },
        alias: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        code: { type: 'string', 'confluent:tags': ['PII'] },
      },
    });
    const fields = compile(schema, ['$.email', '$.nickname', '$.note', '$.alias', '$.extra'], ['PII']);
    const value = framed('{"email":"a@b","nickname":"al","note":"n","alias":"x","extra":"e","code":"c"}');
    const sealed = fields.scanSealed(seal(fields, value));
    const opened = sealed.withOpened(sealed.fields.map(() => null));
    expect(opened.subarray(0, 5).equals(value.subarray(0, 5))).to.equal(true);
    expect(opened.subarray(5).toString()).to.equal('{"email":"","nickname":null,"note":null,"alias":null,"extra":null,"code":""}');
  });

  it('selects tagged properties: nested objects, array items, map values, composition branches', () => {
    const schema = schemaOf({
      type: 'object',
      properties: {
        id: { type: 'string' },
        ssn: { type: 'string', 'confluent:tags': ['PII'] },
        profile: {
          type: 'object',
          properties: { name: { type: 'string', 'confluent:tags': ['PRIVATE', 'PII'] }, karma: { type: 'integer', 'confluent:tags': ['PUBLIC'] } },
        },
        contacts: { type: 'array', items: { type: 'object', properties: { phone: { type: 'string', 'confluent:tags': ['PII'] } } } },
        labels: { type: 'object', additionalProperties: { type: 'string', 'confluent:tags': ['PII'] } },
        extra: { allOf: [{ type: 'object' }, { properties: { secret: { type: 'string', 'confluent:tags': ['PII'] } } }] },
        'full name': { type: 'string', 'confluent:tags': ['PII'] },
      },
    });
    const fields = compile(schema, ['$.id'], ['PII']);
    expect(fields.problems).to.deep.equal([]);
    expect(fields.encryptedPaths).to.deep.equal(['$.id', '$.ssn', '$.profile.name', '$.contacts[*].phone', '$.labels[*]', '$.extra.secret', '$["full name"]']);
    expect([...fields.matchedPaths]).to.deep.equal(['$.id']);

    const value = framed('{"id":"i","ssn":"s","profile":{"name":"n","karma":3},"contacts":[{"phone":"p1"},{"phone":"p2"}],"labels":{"a":"x"},"extra":{"secret":"z"},"full name":"f"}');
    const plain = fields.scanPlain(value);
    expect(plain.fields.map((f) => f.path.text)).to.deep.equal(['$.id', '$.ssn', '$.profile.name', '$.contacts[*].phone', '$.contacts[*].phone', '$.labels[*]', '$.extra.secret', '$["full name"]']);
    const sealed = plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)));
    expect(payloadOf(sealed)).to.deep.equal({
      id: token(0),
      ssn: token(1),
      profile: { name: token(2), karma: 3 },
      contacts: [{ phone: token(3) }, { phone: token(4) }],
      labels: { a: token(5) },
      extra: { secret: token(6) },
      'full name': token(7),
    });
    expect(fields.scanSealed(sealed).withOpened(plain.fields.map((f) => f.plaintext)).equals(value)).to.equal(true);
  });

  it('follows $refs to #/definitions, #/$defs and to a referenced schema by name, with or without a fragment', () => {
    const schema = schemaOf(
      {
        type: 'object',
        properties: {
          home: { $ref: '#/definitions/address' },
          card: { $ref: '#/$defs/card' },
          owner: { $ref: 'person.json' },
          backup: { $ref: 'person.json#/definitions/contact' },
          elsewhere: { $ref: 'https://example.org/unknown.json' },
          local: { $ref: '#/definitions/missing' },
        },
        definitions: { address: { type: 'object', properties: { street: { type: 'string', 'confluent:tags': ['PII'] } } } },
        $defs: { card: { type: 'object', properties: { number: { type: 'string', 'confluent:tags': ['PII'] } } } },
      },
      [{
        name: 'person.json',
        schema: {
          type: 'object',
          properties: { name: { type: 'string', 'confluent:tags': ['PII'] }, contact: { $ref: '#/definitions/contact' } },
          definitions: { contact: { type: 'object', properties: { email: { type: 'string', 'confluent:tags': ['PII'] } } } },
        },
      }],
    );
    const fields = compile(schema, ['$.home.city', '$.elsewhere.x', '$.backup.email'], ['PII']);
    expect(fields.problems).to.deep.equal([]);
    expect(fields.encryptedPaths).to.deep.equal(['$.home.city', '$.elsewhere.x', '$.backup.email', '$.home.street', '$.card.number', '$.owner.name', '$.owner.contact.email']);
    // $.home.city: home's address schema does not name it, and allows it (no additionalProperties: false)
    expect([...fields.matchedPaths]).to.deep.equal(['$.backup.email']);

    const value = framed('{"home":{"street":"s","city":"c"},"card":{"number":"4111"},"owner":{"name":"n","contact":{"email":"e"}},"backup":{"email":"b"}}');
    const sealed = seal(fields, value);
    expect(payloadOf(sealed)).to.deep.equal({
      home: { street: token(0), city: token(1) },
      card: { number: token(2) },
      owner: { name: token(3), contact: { email: token(4) } },
      backup: { email: token(5) },
    });
  });

  it('ends the walk of a recursive schema, and fails closed when tagged fields recur below it', () => {
    const tree = {
      $ref: '#/definitions/node',
      definitions: {
        node: {
          type: 'object',
          properties: { label: { type: 'string' }, owner: { type: 'string', 'confluent:tags': ['PII'] }, children: { type: 'array', items: { $ref: '#/definitions/node' } } },
        },
      },
    };
    const fields = compile(schemaOf(tree), ['$.label', '$.children[*].label'], ['PII']);
    expect(fields.encryptedPaths).to.deep.equal(['$.label', '$.children[*].label', '$.owner']);
    expect([...fields.matchedPaths]).to.deep.equal(['$.label', '$.children[*].label']);
    expect(fields.problems).to.deep.equal([
      `$.children[*] in schema id ${SCHEMA_ID} repeats a schema with tagged fields (a recursive schema): a path names one depth, so the tagged fields at $.children[*] and below would not be encrypted`,
    ]);

    // no tag below the recursion: nothing is left in the clear, no problem; a $ref cycle that does not descend ends too
    const untagged = compile(schemaOf({ ...tree, definitions: { ...tree.definitions, loop: { $ref: '#/definitions/loop' } }, properties: { x: { $ref: '#/definitions/loop' } } }), ['$.x', '$.label']);
    expect(untagged.problems).to.deep.equal([]);
    expect(compile(schemaOf(tree), ['$.owner']).problems).to.deep.equal([]);
  });

  it('names a selected field whose schema does not allow a string as a problem', () => {
    const schema = schemaOf({
      type: 'object',
      properties: {
        age: { type: 'integer' },
        address: { type: 'object', properties: { street: { type: 'string' } } },
        score: { type: ['number', 'null'], 'confluent:tags': ['PII'] },
        either: { oneOf: [{ type: 'string' }, { type: 'integer' }] },
        email: { type: 'string' },
        mixed: { type: 'object', properties: { a: { type: 'string' }, b: { type: 'boolean' } } },
      },
      additionalProperties: false,
    }, [], 7);
    const fields = compile(schema, ['$.age', '$.address', '$.address[*]', '$.either', '$.email', '$.mixed[*]', '$.nowhere'], ['PII']);
    expect(fields.problems).to.deep.equal([
      '$.age is of type integer in schema id 7: an encrypted field is a string, so the schema must allow one',
      '$.address is of type object in schema id 7: an encrypted field is a string, so the schema must allow one',
      '$.mixed[*] is of type boolean in schema id 7: an encrypted field is a string, so the schema must allow one',
      '$.score is of type number or null in schema id 7: an encrypted field is a string, so the schema must allow one',
    ]);
    // ($.nowhere: additionalProperties false, so no value has it; not a problem, just never matched)
    expect([...fields.matchedPaths]).to.deep.equal(['$.age', '$.address', '$.address[*]', '$.either', '$.email', '$.mixed[*]']);
  });

  it('says what is wrong as a record error: an unparsable schema, not a frame, not JSON, not an object, a field that does not decrypt to UTF-8', () => {
    const fields = compile(schemaOf(userSchema), ['$.email']);
    const reasons = [
      () => compile(schemaOf('{"type": "object"', [], 9)),
      () => compile(schemaOf({ properties: { a: { $ref: 'broken.json' } } }, [{ name: 'broken.json', schema: 'x' }]), [], ['PII']),
      () => fields.scanPlain(Buffer.from('{"email":"a@b"}')),
      () => fields.scanPlain(framed('{"email":')),
      () => fields.scanPlain(framed('["a@b"]')),
      () => fields.scanSealed(seal(fields, framed('{"email":"a@b"}'))).withOpened([Buffer.from([0xff, 0xfe])]),
    ].map(recordErrorOf);
    expect(reasons[0]).to.equal('JSON schema id 9 is not valid JSON');
    expect(reasons[1]).to.equal(`referenced schema "broken.json" (id 100) of schema id ${SCHEMA_ID} is not a JSON Schema (an object or a boolean)`);
    expect(reasons[2]).to.match(/magic byte/);
    expect(reasons[3]).to.match(/^not JSON/);
    expect(reasons[4]).to.equal('not a JSON object: field mode needs an object, got an array');
    expect(reasons[5]).to.equal('a decrypted field is not valid UTF-8 JSON text');
  });
});

describe('the JSON Schema registry format and the subject field', () => {
  it('refuses a subject field a tag would encrypt: the decryptor could not read it', () => {
    const schema = schemaOf({ type: 'object', properties: { user: { type: 'string', 'confluent:tags': ['PII'] } } });
    expect(compile(schema, [], ['PII'], '$.user').problems).to.deep.equal([
      `$.user (the subject field) is tagged, in $.user, and would be encrypted in schema id ${SCHEMA_ID}: the subject must stay readable`,
    ]);
    expect(compile(schema, [], ['OTHER'], '$.user').problems).to.deep.equal([]);
  });
});
