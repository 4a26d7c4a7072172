// The two v1 wire formats of the contract, byte by byte, and the errors for what is not one.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { ENVELOPE_OVERHEAD, EnvelopeError, envelopeAad, envelopeHeader, fieldAad, parseEnvelope } from '../../../src/wire/envelope.js';
import { parseWrappedKey, WrappedKeyError, wrappedKeyHeader, wrappedKeyProblem, wrappedMasterKeyId } from '../../../src/wire/wrapped-key.js';
import { MasterKey } from '../../../src/keys/master-key.js';

describe('wire format v1: encrypted value', () => {
  const keyId = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const nonce = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i);

  it('lays out version, algorithm, key id and nonce in 22 bytes; overhead 38', () => {
    const header = envelopeHeader(2, keyId, nonce);
    expect([...header]).to.deep.equal([0x01, 0x02, ...keyId, ...nonce]);
    expect(ENVELOPE_OVERHEAD).to.equal(38);
  });

  it('binds the subject (and in field mode the path) into the associated data', () => {
    const header = envelopeHeader(1, keyId, nonce);
    expect([...envelopeAad(header, Buffer.from('ab'))]).to.deep.equal([...header, 0x61, 0x62]);
    expect([...fieldAad(header, Buffer.from('ab'), '$.e')]).to.deep.equal([...header, 0x61, 0x62, 0x00, 0x24, 0x2e, 0x65]);
  });

  it('parses an envelope into views of its fields', () => {
    const sealed = randomBytes(20);
    const value = Buffer.concat([envelopeHeader(1, keyId, nonce), sealed]);
    const envelope = parseEnvelope(value);
    expect(envelope.algorithm).to.equal(1);
    expect([...envelope.keyId]).to.deep.equal([...keyId]);
    expect([...envelope.nonce]).to.deep.equal([...nonce]);
    expect(Buffer.from(envelope.sealed).equals(sealed)).to.equal(true);
  });

  it('names what is wrong with a value that is not a v1 envelope', () => {
    const good = Buffer.concat([envelopeHeader(1, keyId, nonce), randomBytes(16)]);
    const reason = (value: Uint8Array) => {
      try {
        parseEnvelope(value);
      } catch (err) {
        expect(err).to.be.instanceOf(EnvelopeError);
        return (err as Error).message;
      }
      return 'parsed';
    };
    expect(reason(Buffer.from([0x02, ...good.subarray(1)]))).to.match(/unknown envelope version 0x02/);
    expect(reason(Buffer.from([0x01, 0x07, ...good.subarray(2)]))).to.match(/unknown algorithm 0x07/);
    expect(reason(good.subarray(0, 37))).to.match(/truncated/);
    expect(reason(Buffer.from('{"plain":"json"}'))).to.match(/version 0x7b/);
    expect(reason(new Uint8Array(0))).to.match(/not an encrypted value/);
    expect(reason(good)).to.equal('parsed');
  });
});

describe('wire format v1: keys-topic value', () => {
  it('is 74 bytes: version, algorithm, key id, master key id (big-endian), nonce, wrapped key and tag', () => {
    const master = new MasterKey(randomBytes(32), 0x01020304);
    const dataKey = MasterKey.newDataKey(1);
    const value = Buffer.from(master.wrap(Buffer.from('subject'), dataKey));
    expect(value.length).to.equal(74);
    expect(value[0]).to.equal(0x01);
    expect(value[1]).to.equal(0x01);
    expect(value.subarray(2, 10).equals(Buffer.from(dataKey.keyId))).to.equal(true);
    expect([...value.subarray(10, 14)]).to.deep.equal([1, 2, 3, 4]);
    expect(value.subarray(26).includes(Buffer.from(dataKey.key))).to.equal(false);
    const header = wrappedKeyHeader({ algorithm: 1, keyId: dataKey.keyId, masterKeyId: 0x01020304, nonce: value.subarray(14, 26) });
    expect(value.subarray(0, 26).equals(Buffer.from(header))).to.equal(true);
  });

  it('unwraps only under the same master key, subject and header', () => {
    const master = new MasterKey(randomBytes(32), 1);
    const dataKey = MasterKey.newDataKey(2);
    const value = master.wrap(Buffer.from('alice'), dataKey);
    const unwrapped = master.unwrap(Buffer.from('alice'), value);
    expect(Buffer.from(unwrapped.key).equals(Buffer.from(dataKey.key))).to.equal(true);
    expect(unwrapped.algorithm).to.equal(2);
    expect(() => master.unwrap(Buffer.from('bob'), value)).to.throw(WrappedKeyError, /authentication/);
    expect(() => new MasterKey(randomBytes(32), 1).unwrap(Buffer.from('alice'), value)).to.throw(WrappedKeyError);
    expect(() => new MasterKey(randomBytes(32), 2).unwrap(Buffer.from('alice'), value)).to.throw(WrappedKeyError, /master key id 1/);
    const relabelled = Uint8Array.from(value);
    relabelled[1] = 1; // claim another algorithm
    expect(() => master.unwrap(Buffer.from('alice'), relabelled)).to.throw(WrappedKeyError);
    expect(() => parseWrappedKey(value.subarray(0, 73))).to.throw(WrappedKeyError, /74 bytes/);
  });

  it('tells by its bytes alone why a value cannot be read: the version first (a later format may have any length), then the length, then the algorithm', () => {
    const value = Buffer.from(new MasterKey(randomBytes(32), 7).wrap(Buffer.from('alice'), MasterKey.newDataKey(1)));
    expect(wrappedKeyProblem(value)).to.equal(undefined);
    expect(wrappedMasterKeyId(value)).to.equal(7);
    const withByte = (at: number, byte: number) => Buffer.concat([value.subarray(0, at), Buffer.from([byte]), value.subarray(at + 1)]);
    const cases: [Uint8Array, string, string][] = [
      [new Uint8Array(0), 'length', 'wrapped key must be 74 bytes, got 0'],
      [Buffer.from([0x01]), 'length', 'wrapped key must be 74 bytes, got 1'],
      [value.subarray(0, 73), 'length', 'wrapped key must be 74 bytes, got 73'],
      [Buffer.concat([value, Buffer.from([0])]), 'length', 'wrapped key must be 74 bytes, got 75'],
      [Buffer.concat([value, Buffer.alloc(26)]), 'length', 'wrapped key must be 74 bytes, got 100'],
      [withByte(0, 0x03), 'version', 'unknown wrapped key version 0x03'],
      [Buffer.concat([Buffer.from([0x03]), randomBytes(99)]), 'version', 'unknown wrapped key version 0x03'],
      // version 0x02, the pseudonymous value, is known: judged by its own length
      [withByte(0, 0x02), 'length', 'a pseudonymous wrapped key must be more than 118 bytes, got 74'],
      [Buffer.concat([Buffer.from([0x02]), randomBytes(117)]), 'length', 'a pseudonymous wrapped key must be more than 118 bytes, got 118'],
      [Buffer.from([0x00]), 'version', 'unknown wrapped key version 0x00'],
      [withByte(1, 0x09), 'algorithm', 'unknown data key algorithm 0x09'],
    ];
    for (const [bad, kind, reason] of cases) {
      expect(wrappedKeyProblem(bad), `${bad.length} bytes`).to.deep.equal({ kind, reason });
      expect(wrappedMasterKeyId(bad)).to.equal(undefined);
      expect(() => parseWrappedKey(bad)).to.throw(WrappedKeyError, reason);
    }
  });
});
