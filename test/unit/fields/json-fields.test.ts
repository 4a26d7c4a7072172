// Locating fields in JSON text without re-serializing it: every byte outside a selected field stays.
import { expect } from 'chai';
import { fieldEnvelope, fieldToken } from '../../../src/fields/field-envelope.js';
import { jsonSelection, scanRecord } from '../../../src/formats/json-field-format.js';
import { compileSelector, JsonValueError, locateFields, scanJsonObject, spliceFields } from '../../../src/fields/json-fields.js';
import { parseJsonPath, pathCovers } from '../../../src/fields/json-path.js';
import { EnvelopeError } from '../../../src/wire/envelope.js';

const paths = (...texts: string[]) => texts.map(parseJsonPath);
const selected = (text: string, ...texts: string[]) => locateFields(text, paths(...texts)).map((s) => [text.slice(s.start, s.end), s.path.text]);

const DOC = `{ "id" : 7, "email":"a@b.org" ,"address":{"street":"Rue \\"X\\" 1","city":"Lyon"},
  "phones":[ "+33 1", "+33 2" ],"scores":[1.0, 1e2, 12345678901234567890],"ok":true,"none":null,"nested":{"a":[{"b":{"c":"deep"}}]},
  "esc\\u0061ped":"by escape" }`;

describe('JSON paths', () => {
  it('parses names, indexes and wildcards, and refuses anything else', () => {
    expect(parseJsonPath('$.address.street').segments).to.deep.equal([{ name: 'address' }, { name: 'street' }]);
    expect(parseJsonPath('$.phones[*]').segments).to.deep.equal([{ name: 'phones' }, { wildcard: true }]);
    expect(parseJsonPath('$.a[2].b').segments).to.deep.equal([{ name: 'a' }, { index: 2 }, { name: 'b' }]);
    for (const bad of ['$', 'email', '$..a', '$.a[', '$.a[-1]', '$.a b', '$["a"]']) expect(() => parseJsonPath(bad), bad).to.throw(/not a JSON path/);
  });

  it('knows when one path holds another', () => {
    expect(pathCovers(parseJsonPath('$.a'), parseJsonPath('$.a.b'))).to.equal(true);
    expect(pathCovers(parseJsonPath('$.a[*]'), parseJsonPath('$.a[3].x'))).to.equal(true);
    expect(pathCovers(parseJsonPath('$.a.b'), parseJsonPath('$.a'))).to.equal(false);
    expect(pathCovers(parseJsonPath('$.a'), parseJsonPath('$.b'))).to.equal(false);
  });
});

describe('JSON fields', () => {
  it('finds the selected values as they are written: numbers, escapes, objects, arrays, every type', () => {
    expect(selected(DOC, '$.id', '$.email', '$.address.street', '$.phones[*]', '$.scores[0]', '$.scores[2]', '$.ok', '$.none', '$.nested.a[0].b.c')).to.deep.equal([
      ['7', '$.id'],
      ['"a@b.org"', '$.email'],
      ['"Rue \\"X\\" 1"', '$.address.street'],
      ['"+33 1"', '$.phones[*]'],
      ['"+33 2"', '$.phones[*]'],
      ['1.0', '$.scores[0]'],
      ['12345678901234567890', '$.scores[2]'],
      ['true', '$.ok'],
      ['null', '$.none'],
      ['"deep"', '$.nested.a[0].b.c'],
    ]);
    expect(selected(DOC, '$.address')).to.deep.equal([['{"street":"Rue \\"X\\" 1","city":"Lyon"}', '$.address']]);
    expect(selected(DOC, '$.escaped')).to.deep.equal([['"by escape"', '$.escaped']]); // member names are compared decoded
  });

  it('leaves missing fields alone and does not descend into scalars', () => {
    expect(selected(DOC, '$.missing', '$.email.inner', '$.phones[5]', '$.address[0]', '$.phones.x')).to.deep.equal([]);
  });

  it('selects a value once: nested ones go with their container, duplicates with the first path', () => {
    expect(selected(DOC, '$.address.street', '$.address')).to.deep.equal([['{"street":"Rue \\"X\\" 1","city":"Lyon"}', '$.address']]);
    expect(selected(DOC, '$.phones[0]', '$.phones[*]')).to.deep.equal([['"+33 1"', '$.phones[0]'], ['"+33 2"', '$.phones[*]']]);
  });

  it('splices replacements in and keeps every other byte', () => {
    const spans = locateFields(DOC, paths('$.email', '$.scores[1]'));
    const out = spliceFields(DOC, spans, ['"X"', '"Y"']);
    expect(out).to.equal(DOC.replace('"a@b.org"', '"X"').replace('1e2', '"Y"'));
  });

  it('accepts only UTF-8 JSON objects, as JSON.parse would', () => {
    const scan = (text: string | Buffer) => scanJsonObject(typeof text === 'string' ? Buffer.from(text) : text, compileSelector([]));
    expect(scan(' {"a":1} ').text).to.equal(' {"a":1} ');
    for (const [bad, reason] of [['nope', /^not JSON: the value does not start with a JSON object$/], ['[1,2]', /not a JSON object.*an array/], ['"s"', /got a string/], ['null', /got null/], ['', /^not JSON/]] as const) {
      expect(() => scan(bad), bad).to.throw(JsonValueError, reason);
    }
    expect(() => scan(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).to.throw(JsonValueError, /UTF-8/);
    // the scanner is the validator: it must refuse what JSON.parse refuses, and accept what it accepts
    const cases = [
      '{"a":1,}', '{"a" 1}', '{a:1}', "{'a':1}", '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":+1}', '{"a":NaN}', '{"a":tru}', '{"a":"\\x"}',
      '{"a":"tab\there"}', '{"a":[1,]}', '{"a":[1 2]}', '{"a":1} x', '{"a":1}}', '{"a":{"b":1}', '{"a":"\\u12"}', '{"a":-}', '{"a":1e}',
      '{"a":"ok \\u00e9 \\n \\" \\\\"}', '{ "a" : [ ] , "b" : { } , "c" : -0.5E+10 , "d" : [true,false,null] }', '{"":0,"\\u0000":1}', '{"a":1e-7}', ' \n\t{}\r ',
    ];
    for (const text of cases) {
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      if (parses) expect(() => scan(text), text).to.not.throw();
      else expect(() => scan(text), text).to.throw(JsonValueError);
    }
    expect(() => scan('{"a":' + '['.repeat(600) + ']'.repeat(600) + '}'), 'deep nesting').to.throw(JsonValueError, /nesting deeper/);
    // huge strings scan without recursion or regex backtracking (a few KB compressed on the wire)
    expect(scan(`{"a":"${'x'.repeat(10_000_000)}","b":"${'\\n'.repeat(2_000_000)}"}`).text.length).to.equal(14_000_015);
    // reasons never quote the value (they are logged)
    for (const bad of ['john.doe@example.com', '{"mail":"john.doe@example.com",}', '{"mail":"john.doe@example.com\u0001"}']) {
      expect(() => scan(bad)).to.throw(JsonValueError).that.satisfies((err: Error) => !err.message.includes('john'));
    }
  });

  it('agrees with JSON.parse on thousands of random documents and their one-character mutations', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
    const scalar = () => pick<unknown>([0, -1.5, 1e21, 'x', 'é\n"q"', '', true, false, null, 123456789]);
    const value = (depth: number): unknown => {
      if (depth > 3 || random() < 0.4) return scalar();
      if (random() < 0.5) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, (_, i) => [pick(['a', 'b', 'é', 'x y', `k${i}`]), value(depth + 1)]));
    };
    const chars = ['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '1', '-', 'e', '.', 'n', 't'];
    let checked = 0;
    for (let i = 0; i < 3000; i++) {
      const doc = JSON.stringify({ root: value(0), n: i }, null, random() < 0.5 ? 0 : 2);
      const at = Math.floor(random() * doc.length);
      const mutated = random() < 0.5 ? doc.slice(0, at) + doc.slice(at + 1) : doc.slice(0, at) + pick(chars) + doc.slice(at);
      for (const text of [doc, mutated]) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        const isObject = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed);
        let scanned = true;
        try {
          scanJsonObject(Buffer.from(text), compileSelector(paths('$.root', '$.root[*]', '$.n')));
        } catch (err) {
          if (!(err instanceof JsonValueError)) throw err;
          scanned = false;
        }
        expect(scanned, text).to.equal(isObject);
        checked++;
      }
    }
    expect(checked).to.equal(6000);
  });

  it('reads the subject from a string or a number field', () => {
    const subject = (doc: string, path: string) => Buffer.from(scanRecord(Buffer.from(doc), jsonSelection(['$.x'], path)).subjectBytes!).toString();
    expect(subject('{"u":"ali\\u0063e"}', '$.u')).to.equal('alice');
    expect(subject('{"u":{"id":42}}', '$.u.id')).to.equal('42');
    for (const doc of ['{}', '{"u":null}', '{"u":""}', '{"u":[1]}']) expect(() => subject(doc, '$.u'), doc).to.throw(JsonValueError, /no subject/);
    // JSON.parse readers take the last duplicate, a scanner the first: such a record has no one subject
    expect(() => subject('{"u":"alice","u":"bob"}', '$.u')).to.throw(JsonValueError, /subject field appears twice/);
  });
});

describe('field envelope text', () => {
  it('is "shr1:" + unpadded base64url, and reads back', () => {
    const envelope = new Uint8Array([1, 1, 250, 251, 252, 253, 254, 255]);
    const token = fieldToken(envelope);
    expect(token).to.equal(`"shr1:${Buffer.from(envelope).toString('base64url')}"`);
    expect(token).to.not.contain('=');
    expect([...fieldEnvelope(token)!]).to.deep.equal([...envelope]);
  });

  it('leaves values that are not encrypted fields, and refuses broken ones', () => {
    expect(fieldEnvelope('"plain"')).to.equal(undefined);
    expect(fieldEnvelope('42')).to.equal(undefined);
    expect(() => fieldEnvelope('"shr1:not base64!"')).to.throw(EnvelopeError, /base64url/);
    expect(() => fieldEnvelope('"shr1:A"')).to.throw(EnvelopeError);
  });
});
