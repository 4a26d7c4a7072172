// The Confluent wire format: header and Protobuf message indexes read and written byte for byte, and
// every malformed frame a record error naming what is wrong, never the content.
import { expect } from 'chai';
import { isRecordError } from '../../../src/errors/shredder-errors.js';
import {
  encodeProtobufFrame,
  encodeRegistryFrame,
  parseProtobufFrame,
  parseRegistryFrame,
  reframe,
  RegistryFrameError,
} from '../../../src/wire/registry-framing.js';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function rejection(parse: (value: Uint8Array) => unknown, value: Uint8Array): RegistryFrameError {
  try {
    parse(value);
  } catch (err) {
    expect(err).to.be.instanceOf(RegistryFrameError);
    expect(isRecordError(err)).to.equal(true);
    return err as RegistryFrameError;
  }
  throw new Error(`parsed ${Buffer.from(value).toString('hex')} without complaint`);
}

describe('schema registry framing', () => {
  it('reads magic byte, big-endian schema id and payload, and writes them back byte for byte', () => {
    const value = hex('00 00 01 02 03 cafe');
    const frame = parseRegistryFrame(value);
    expect(frame.schemaId).to.equal(0x010203);
    expect(frame.payload).to.deep.equal(hex('cafe'));
    expect(frame.header).to.deep.equal(hex('00 00 01 02 03'));
    expect(encodeRegistryFrame(frame.schemaId, frame.payload)).to.deep.equal(value);
    expect(reframe(frame, frame.payload)).to.deep.equal(value);
    // an empty payload is a valid record (an Avro record with no fields, an all-default Protobuf message)
    expect(parseRegistryFrame(hex('00 7fffffff')).schemaId).to.equal(0x7fffffff);
    expect(parseRegistryFrame(hex('00 7fffffff')).payload.length).to.equal(0);
    // from a Uint8Array that is a view into a larger buffer, too
    const outer = hex('ff 00 00000009 aa ff');
    const inner = new Uint8Array(outer.buffer, outer.byteOffset + 1, 6);
    expect(parseRegistryFrame(inner)).to.deep.include({ schemaId: 9 });
    expect(parseRegistryFrame(inner).payload).to.deep.equal(hex('aa'));
  });

  it('names what is wrong with every malformed header, and never a byte of the value', () => {
    const cases: [string, RegExp][] = [
      ['', /empty value/],
      ['7b', /magic byte 0x00/], // a JSON text, '{'
      ['01 00000001 aa', /magic byte 0x00/],
      ['00', /1 bytes ends inside its 4-byte schema id/],
      ['00 0000 01', /4 bytes ends inside its 4-byte schema id/],
      ['00 80000000 aa', /above 2\^31-1/],
      ['00 ffffffff', /above 2\^31-1/],
    ];
    for (const [value, reason] of cases) {
      const error = rejection(parseRegistryFrame, hex(value));
      expect(error.message, value).to.match(reason);
      expect(error.message).to.not.match(/7b|aa|cafe/i);
    }
  });

  it('reads Protobuf message indexes: the 0x00 shortcut for [0], counts and zigzag varints', () => {
    const cases: [string, number[], string][] = [
      ['00 00000005 00 0801', [0], '0801'], // the shortcut, as Confluent's serializer writes [0]
      ['00 00000005 02 02 0801', [1], '0801'], // count 1 (zigzag 2), index 1 (zigzag 2)
      ['00 00000005 04 04 02', [2, 1], ''], // a nested message: the second in the third top-level one
      ['00 00000005 02 00 0801', [0], '0801'], // the long form of [0], which readers accept too
      ['00 00000005 02 ac02', [150], ''], // 150 zigzag = 300 = 0xac 0x02
      ['00 00000005 02 feffffff0f', [0x7fffffff], ''], // the largest index: 5 bytes
    ];
    for (const [value, indexes, payload] of cases) {
      const bytes = hex(value);
      const frame = parseProtobufFrame(bytes);
      expect(frame.schemaId, value).to.equal(5);
      expect(frame.messageIndexes, value).to.deep.equal(indexes);
      expect(frame.payload, value).to.deep.equal(hex(payload));
      // the header as read: the frame written back with it is the value, whichever form it used
      expect(reframe(frame, frame.payload), value).to.deep.equal(bytes);
    }
    // written from scratch, [0] takes the shortcut and the others a count
    expect(encodeProtobufFrame(5, [0], hex('0801'))).to.deep.equal(hex('00 00000005 00 0801'));
    expect(encodeProtobufFrame(5, [2, 1], hex(''))).to.deep.equal(hex('00 00000005 04 04 02'));
    expect(encodeProtobufFrame(5, [150], hex(''))).to.deep.equal(hex('00 00000005 02 ac02'));
    expect(encodeProtobufFrame(5, [0x7fffffff], hex(''))).to.deep.equal(hex('00 00000005 02 feffffff0f'));
    expect(() => encodeProtobufFrame(5, [], hex(''))).to.throw(RangeError);
    expect(() => encodeProtobufFrame(5, [-1], hex(''))).to.throw(RangeError);
  });

  it('round-trips random frames of each kind', () => {
    let seed = 42;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 2000; i++) {
      const id = random(2) ? random(1000) : random(2 ** 31);
      const payload = Buffer.from(Array.from({ length: random(20) }, () => random(256)));
      const avro = encodeRegistryFrame(id, payload);
      expect(parseRegistryFrame(avro)).to.deep.include({ schemaId: id, payload });
      const indexes = Array.from({ length: 1 + random(4) }, () => (random(3) ? random(5) : random(2 ** 31)));
      const protobuf = encodeProtobufFrame(id, indexes, payload);
      const frame = parseProtobufFrame(protobuf);
      expect(frame).to.deep.include({ schemaId: id, messageIndexes: indexes, payload });
      expect(encodeProtobufFrame(frame.schemaId, frame.messageIndexes, frame.payload)).to.deep.equal(protobuf);
    }
  });

  it('names what is wrong with every malformed Protobuf frame', () => {
    const cases: [string, RegExp][] = [
      ['00 00000005', /ends before its message indexes/],
      ['00 00000005 80', /ends inside its message index count/],
      ['00 00000005 01 00', /negative message index count \(-1\)/],
      ['00 00000005 06 00 00', /3 message indexes but 2 bytes after the count/],
      ['00 00000005 7e', /63 message indexes but 0 bytes/], // a count far past the end: no allocation
      ['00 00000005 04 02 ac', /ends inside its message index 2 of 2/],
      ['00 00000005 02 01 aa', /negative message index \(-1\)/],
      ['00 00000005 ffffffff1f', /message index count wider than 32 bits/],
      ['00 00000005 02 ffffffff8f01', /message index 1 of 1 longer than 5 bytes/],
      ['01 00000005 00', /magic byte/],
    ];
    for (const [value, reason] of cases) {
      const error = rejection(parseProtobufFrame, hex(value));
      expect(error.message, value).to.match(reason);
      expect(error.message).to.not.match(/aa/);
    }
  });
});
