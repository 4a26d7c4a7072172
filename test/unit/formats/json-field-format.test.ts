// The JSON field format through the seam every processor uses (formats/field-format.ts): the selected
// fields' JSON text is what is sealed, each is put back as its "shr1:" token, and opening gives back
// the exact value, a shredded field's configured value, or a record error.
import { expect } from 'chai';
import { isRecordError } from '../../../src/errors/shredder-errors.js';
import { fieldMode } from '../../../src/fields/field-mode.js';

const mode = fieldMode(['$.email', '$.address.street'], '$.userId', '"(erased)"')!;
const value = Buffer.from('{"userId":"u-7","email":"alice@example.org","address":{"street":"1 Main St","city":"Oslo"},"n":1}');
/** Stand-ins for envelopes: any bytes, distinct per field (the format carries them, it does not open them). */
const envelopeOf = (k: number) => Buffer.from([0x01, 0x01, 0xa0 + k, 0xff, 0x00]);

describe('the JSON field format', () => {
  it('finds the subject and the selected fields, and puts each envelope back as its token', () => {
    const plain = mode.format.scanPlain(value);
    expect(Buffer.from(plain.subject!).toString()).to.equal('u-7');
    expect(plain.fields.map((f) => [f.path.text, Buffer.from(f.plaintext).toString()])).to.deep.equal([
      ['$.email', '"alice@example.org"'],
      ['$.address.street', '"1 Main St"'],
    ]);
    const sealed = plain.withSealed(plain.fields.map((_, k) => envelopeOf(k))).toString();
    expect(JSON.parse(sealed)).to.deep.equal({
      userId: 'u-7',
      email: `shr1:${envelopeOf(0).toString('base64url')}`,
      address: { street: `shr1:${envelopeOf(1).toString('base64url')}`, city: 'Oslo' },
      n: 1,
    });
  });

  it('opens back to the exact value, and a shredded field to its configured value', () => {
    const plain = mode.format.scanPlain(value);
    const sealed = mode.format.scanSealed(plain.withSealed(plain.fields.map((_, k) => envelopeOf(k))));
    expect(sealed.fields.map((f) => Buffer.from(f.envelope!).equals(envelopeOf(sealed.fields.indexOf(f))))).to.deep.equal([true, true]);
    expect(sealed.withOpened(plain.fields.map((f) => f.plaintext)).equals(value)).to.equal(true);
    const shredded = JSON.parse(sealed.withOpened([null, plain.fields[1].plaintext]).toString());
    expect(shredded).to.deep.include({ email: '(erased)', address: { street: '1 Main St', city: 'Oslo' } });
  });

  it('with a pseudonym: puts it in the subject field as "shp1:" + base64url, reads it back, and gives the subject id back', () => {
    const pseudonym = Buffer.alloc(16, 0xab);
    const plain = mode.format.scanPlain(value);
    const written = plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)), pseudonym);
    const json = JSON.parse(written.toString());
    expect(json.userId).to.equal(`shp1:${pseudonym.toString('base64url')}`);
    expect(written.includes('u-7')).to.equal(false);
    expect(json.email).to.equal(`shr1:${envelopeOf(0).toString('base64url')}`);
    const sealed = mode.format.scanSealed(written);
    expect(Buffer.from(sealed.pseudonym!).equals(pseudonym)).to.equal(true);
    expect(sealed.withOpened(plain.fields.map((f) => f.plaintext), Buffer.from('u-7')).equals(value)).to.equal(true);
    // a subject field after every selected field, and one with nothing selected around it
    const last = fieldMode(['$.email'], '$.user')!.format.scanPlain(Buffer.from('{"email":"e","user":"z"}'));
    expect(JSON.parse(last.withSealed([envelopeOf(0)], pseudonym).toString()).user).to.equal(`shp1:${pseudonym.toString('base64url')}`);
    expect(mode.format.scanSealed(value).pseudonym).to.equal(undefined); // (a subject id: nothing to look up)
    // a number cannot carry a pseudonym: a record error
    const numeric = fieldMode(['$.email'], '$.user')!.format.scanPlain(Buffer.from('{"user":42,"email":"e"}'));
    expect(() => numeric.withSealed([envelopeOf(0)], pseudonym)).to.throw(/must be a string/);
  });

  it('leaves a field that was never encrypted as it is', () => {
    const sealed = mode.format.scanSealed(value);
    expect(sealed.fields.map((f) => f.envelope)).to.deep.equal([undefined, undefined]);
    expect(sealed.withOpened([undefined, undefined]).equals(value)).to.equal(true);
  });

  it('says what is wrong as a record error: not JSON, no subject, a field that does not decrypt to UTF-8', () => {
    const problems = [
      () => mode.format.scanPlain(Buffer.from('{"email":')),
      () => mode.format.scanPlain(Buffer.from('{"email":"a@b"}')),
      () => {
        const plain = mode.format.scanPlain(value);
        mode.format.scanSealed(plain.withSealed(plain.fields.map((_, k) => envelopeOf(k)))).withOpened([Buffer.from([0xff, 0xfe]), null]);
      },
    ];
    const reasons = problems.map((problem) => {
      try {
        problem();
      } catch (err) {
        expect(isRecordError(err), String(err)).to.equal(true);
        return (err as Error).message;
      }
      return 'no error';
    });
    expect(reasons[0]).to.match(/^not JSON/);
    expect(reasons[1]).to.equal('no subject: $.userId is missing from the value');
    expect(reasons[2]).to.equal('a decrypted field is not valid UTF-8 JSON text');
  });
});
