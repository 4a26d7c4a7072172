// A bounded walk over an Avro binary value before avsc decodes it. avsc trusts what a value says: an
// array block claiming 2^32 items in a 10-byte value makes it loop billions of times past the end of
// the buffer, and a record nested a million deep exhausts the stack. This walk reads every length and
// count against the bytes that are left, so junk is a RecordError in time linear in its size.
// (Avro specification 1.11, "Binary Encoding".)
import type avro from 'avsc';
import { RecordError } from '../../errors/shredder-errors.js';
import type { UnionType } from './avro-union.js';

const MAX_DEPTH = 256;
/** Items of a type that takes no bytes (null, an empty record) cannot be bounded by the bytes left: this bounds them. */
const MAX_EMPTY_ITEMS = 1 << 20;

class AvroBinaryError extends RecordError {
  override readonly name: string = 'AvroBinaryError';
}

class Cursor {
  at = 0;
  emptyItems = 0;
  constructor(readonly bytes: Uint8Array) {}

  fail(what: string): never {
    throw new AvroBinaryError(`not Avro of its schema: ${what} at byte ${this.at}`);
  }

  need(n: number): void {
    if (n > this.bytes.length - this.at) this.fail(`${n} bytes needed, ${this.bytes.length - this.at} left`);
  }

  /** A zigzag varint long, as a double (exact for every count and length that fits the value). */
  long(): number {
    let raw = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      this.need(1);
      const byte = this.bytes[this.at++];
      raw += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
    }
    return this.fail('a varint longer than 10 bytes');
  }

  /** Past a length and that many bytes. */
  skipBytes(): void {
    const n = this.length();
    this.at += n;
  }

  /** A length that must fit in what is left. */
  length(): number {
    const n = this.long();
    if (n < 0) this.fail('a negative length');
    this.need(n);
    return n;
  }
}

/** The fewest bytes a value of `type` takes: how many items a block count can honestly claim. */
function minimumBytes(type: avro.Type, depth = 0): number {
  if (depth > 8) return 0;
  const name = type.typeName;
  switch (name) {
    case 'null':
      return 0;
    case 'float':
      return 4;
    case 'double':
      return 8;
    case 'fixed':
      return (type as avro.types.FixedType).size;
    case 'record':
    case 'error':
      return (type as avro.types.RecordType).fields.reduce((sum, field) => sum + minimumBytes(field.type, depth + 1), 0);
    default:
      return name === 'null' ? 0 : 1; // every varint, length, count and union index takes a byte at least
  }
}

function walk(type: avro.Type, cursor: Cursor, depth: number): void {
  if (depth > MAX_DEPTH) cursor.fail(`nesting deeper than ${MAX_DEPTH}`);
  const name = type.typeName;
  switch (name) {
    case 'null':
      return;
    case 'boolean':
      cursor.need(1);
      if (cursor.bytes[cursor.at++] > 1) cursor.fail('a boolean that is neither 0 nor 1');
      return;
    case 'int':
    case 'abstract:long':
    case 'long':
      cursor.long();
      return;
    case 'enum': {
      const index = cursor.long();
      if (index < 0 || index >= (type as avro.types.EnumType).symbols.length) cursor.fail('an enum index out of range');
      return;
    }
    case 'float':
      cursor.need(4);
      cursor.at += 4;
      return;
    case 'double':
      cursor.need(8);
      cursor.at += 8;
      return;
    case 'string':
    case 'bytes':
      cursor.skipBytes();
      return;
    case 'fixed': {
      const size = (type as avro.types.FixedType).size;
      cursor.need(size);
      cursor.at += size;
      return;
    }
    case 'record':
    case 'error':
      for (const field of (type as avro.types.RecordType).fields) walk(field.type, cursor, depth + 1);
      return;
    case 'array':
    case 'map': {
      const items = name === 'array' ? (type as avro.types.ArrayType).itemsType : (type as avro.types.MapType).valuesType;
      const least = minimumBytes(items) + (name === 'map' ? 1 : 0); // (a map's key is a string: a length byte at least)
      for (;;) {
        let count = cursor.long();
        if (count === 0) return;
        if (count < 0) {
          count = -count;
          cursor.length(); // the block's size in bytes: checked, then read item by item anyway
        }
        if (least > 0) cursor.need(Math.ceil(count * least));
        else if ((cursor.emptyItems += count) > MAX_EMPTY_ITEMS) cursor.fail(`more than ${MAX_EMPTY_ITEMS} items that take no bytes`);
        for (let i = 0; i < count; i++) {
          if (name === 'map') cursor.skipBytes(); // the key
          walk(items, cursor, depth + 1);
        }
      }
    }
    default:
      if (name.startsWith('union')) {
        const branches = (type as UnionType).types;
        const index = cursor.long();
        if (index < 0 || index >= branches.length) cursor.fail('a union branch index out of range');
        walk(branches[index], cursor, depth + 1);
        return;
      }
      cursor.fail(`a type this check does not know (${name})`);
  }
}

/** Throws a RecordError unless `bytes` is exactly one value of `type`, every length and count within the value. */
export function checkAvroBinary(type: avro.Type, bytes: Uint8Array): void {
  const cursor = new Cursor(bytes);
  walk(type, cursor, 0);
  if (cursor.at !== bytes.length) cursor.fail(`${bytes.length - cursor.at} bytes after the value`);
}
