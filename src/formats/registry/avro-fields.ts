// Avro records through a schema registry, field by field (schema-fields.ts says what is encrypted and
// how). A value is decoded with its schema (avsc), its selected string and bytes fields are replaced,
// and it is encoded again with the same schema, so the schema id stays true and every reader decodes
// every other field as written. Avro's binary encoding is canonical except for array and map blocks:
// a re-encoded value writes each array or map as one block, which every reader reads alike.
//
// Longs are decoded as BigInt (avsc's default, a double, would round ids above 2^53); logical types are
// not applied, so decimals, dates and uuids pass through as their underlying values.
//
// Before avsc decodes a value, checkAvroBinary walks it: avsc trusts block counts, and ten bytes
// claiming four billion array items would hold a partition for minutes.
import avro from 'avsc';
import { RecordError } from '../../errors/shredder-errors.js';
import type { UnionType } from './avro-union.js';
import { envelopeOfFieldBytes, envelopeOfFieldText, pseudonymOfSubjectText, sealedFieldBytes, sealedFieldText, subjectNotStringReason, subjectPseudonymText } from '../../fields/field-envelope.js';
import { compileSelector, type FieldSelector } from '../../fields/json-fields.js';
import { parseJsonPath, pathCovers, type JsonPath } from '../../fields/json-path.js';
import { parseRegistryFrame, type RegistryFrame } from '../../wire/registry-framing.js';
import type { OpenedField, PlainValue, SealedValue } from '../field-format.js';
import { decryptedText } from '../decrypted-text.js';
import { checkAvroBinary } from './avro-binary-check.js';
import type { RegistrySelection, ResolvedSchema, SchemaFields, SchemaFormat } from './schema-fields.js';

/** Avro's long as BigInt (avsc's default, a double, rounds above 2^53): for every type this format parses, and its tests. */
export const longAsBigInt = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (json: unknown) => BigInt(json as string),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

type Type = avro.Type;
type TrieNode = FieldSelector['root'];
type Container = Record<string, unknown> | unknown[];

/** A selected field found in a decoded value: where it is, and whether it is a string or bytes field. */
interface Location {
  container: Container;
  key: string | number;
  path: JsonPath;
  kind: 'string' | 'bytes';
  /** The field's type allows null (a union with null): a shredded field becomes null, else "" or empty bytes. */
  nullable: boolean;
}

/** What a selected field's type is, once unions with null are looked through; undefined: not encryptable. */
function leafOf(type: Type): { kind: 'string' | 'bytes'; nullable: boolean } | undefined {
  const name = type.typeName;
  if (name === 'string' || name === 'bytes') return { kind: name, nullable: false };
  if (name.startsWith('union')) {
    const branches = (type as UnionType).types;
    const others = branches.filter((b) => b.typeName !== 'null');
    if (others.length === 1 && (others[0].typeName === 'string' || others[0].typeName === 'bytes')) {
      return { kind: others[0].typeName as 'string' | 'bytes', nullable: others.length < branches.length };
    }
  }
  return undefined;
}

/** How a type is named in a problem: `int`, `record shop.Address`, `union [null, int]`. */
function describe(type: Type): string {
  const name = type.typeName.replace(/^abstract:/, '');
  if (name === 'record' || name === 'enum' || name === 'fixed' || name === 'error') return `${name} ${type.name ?? ''}`.trim();
  if (name.startsWith('union')) return `union [${(type as UnionType).types.map(describe).join(', ')}]`;
  return name;
}

const children = (nodes: readonly TrieNode[], step: (n: TrieNode) => TrieNode | undefined): TrieNode[] => {
  const next: TrieNode[] = [];
  for (const n of nodes) {
    const child = step(n);
    if (child) next.push(child);
    if (n.wildcard) next.push(n.wildcard);
  }
  return next;
};

/** The kind of a decoded value, as avsc sorts union branches: an unwrapped union has one branch per kind. */
function kindOfValue(value: unknown): string {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number' || typeof value === 'bigint') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (Buffer.isBuffer(value)) return 'buffer';
  return Array.isArray(value) ? 'array' : 'object';
}

function kindOfType(type: Type): string {
  switch (type.typeName) {
    case 'string':
    case 'enum':
      return 'string';
    case 'int':
    case 'long':
    case 'abstract:long':
    case 'float':
    case 'double':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'bytes':
    case 'fixed':
      return 'buffer';
    case 'array':
      return 'array';
    default:
      return 'object';
  }
}

/** Each unwrapped union's branches by kind (a deep isValid per record would cost more than the decoding). */
const branchesByKind = new WeakMap<Type, Map<string, Type>>();

/** The branch of a decoded union value that goes on (null: none). */
function branchOf(type: UnionType, value: unknown): { type: Type; value: unknown } | undefined {
  if (value === null || value === undefined) return undefined;
  if (type.typeName === 'union:wrapped') {
    const [name] = Object.keys(value as object);
    const branch = type.types.find((b) => b.branchName === name);
    return branch && { type: branch, value: (value as Record<string, unknown>)[name] };
  }
  let byKind = branchesByKind.get(type);
  if (!byKind) {
    byKind = new Map(type.types.filter((b) => b.typeName !== 'null').map((b) => [kindOfType(b), b]));
    branchesByKind.set(type, byKind);
  }
  const branch = byKind.get(kindOfValue(value)) ?? type.types.find((b) => b.typeName !== 'null' && b.isValid(value));
  return branch && { type: branch, value };
}

class AvroSchemaFields implements SchemaFields {
  readonly problems: string[] = [];
  readonly matchedPaths = new Set<string>();
  readonly encryptedPaths: string[];
  private readonly selector: FieldSelector;

  constructor(private readonly id: number, private readonly type: Type, rawRecords: Map<string, RawField[]>, private readonly selection: RegistrySelection) {
    const tagged = selection.tags.length > 0 ? taggedPaths(type, rawRecords, new Set(selection.tags), id) : { paths: [], problems: [] };
    this.problems.push(...tagged.problems);
    const subjectPath = selection.subjectPath;
    const covering = subjectPath && tagged.paths.find((text) => pathCovers(parseJsonPath(text), subjectPath));
    if (covering) this.problems.push(`${subjectPath.text} (the subject field) is tagged, in ${covering}, and would be encrypted in schema id ${id}: the subject must stay readable`);
    const configured = new Set(selection.paths.map((p) => p.text));
    const paths = [...selection.paths, ...tagged.paths.filter((text) => !configured.has(text)).map(parseJsonPath)];
    this.encryptedPaths = paths.map((p) => p.text);
    this.selector = compileSelector(paths, selection.subjectPath);
    this.check(type, [this.selector.root], '$', 0);
  }

  /** Walks the schema along the selected paths: what they match, and which selected fields cannot be encrypted. */
  private check(type: Type, nodes: TrieNode[], at: string, depth: number): void {
    if (nodes.length === 0 || depth > 64) return;
    for (const node of nodes) {
      if (!node.select) continue;
      if (this.selection.paths.includes(node.select.path)) this.matchedPaths.add(node.select.path.text);
      if (!leafOf(type)) this.problems.push(`${at} is of type ${describe(type)} in schema id ${this.id}: only string and bytes fields (or their unions with null) can be encrypted`);
      return; // (a selected field is sealed whole: nothing inside it is looked for)
    }
    const name = type.typeName;
    if (name === 'record' || name === 'error') {
      for (const field of (type as avro.types.RecordType).fields) this.check(field.type, children(nodes, (n) => n.names.get(field.name)), `${at}.${field.name}`, depth + 1);
    } else if (name === 'array') {
      const items = (type as avro.types.ArrayType).itemsType;
      this.check(items, nodes.flatMap((n) => [...n.indexes.values(), ...(n.wildcard ? [n.wildcard] : [])]), `${at}[*]`, depth + 1);
    } else if (name === 'map') {
      const values = (type as avro.types.MapType).valuesType;
      this.check(values, nodes.flatMap((n) => [...n.names.values(), ...(n.wildcard ? [n.wildcard] : [])]), `${at}[*]`, depth + 1);
    } else if (name.startsWith('union')) {
      for (const branch of (type as UnionType).types) this.check(branch, nodes, at, depth + 1);
    }
  }

  private decode(value: Uint8Array): { frame: RegistryFrame; record: Record<string, unknown> } {
    const frame = parseRegistryFrame(value);
    try {
      checkAvroBinary(this.type, frame.payload);
      return { frame, record: this.type.fromBuffer(frame.payload) as Record<string, unknown> };
    } catch (err) {
      if (err instanceof RecordError) throw err;
      throw new RecordError(`not Avro of schema id ${this.id}: ${(err as Error).message.slice(0, 100)}`);
    }
  }

  /** The selected fields present in a decoded record, in schema order, and the subject (with where it is). */
  private locate(record: Record<string, unknown>): { locations: Location[]; subject?: Uint8Array; subjectAt?: { container: Container; key: string | number } } {
    const locations: Location[] = [];
    let subject: Uint8Array | undefined;
    let subjectAt: { container: Container; key: string | number } | undefined;
    const visit = (type: Type, container: Container, key: string | number, nodes: TrieNode[]): void => {
      const value = (container as Record<string | number, unknown>)[key];
      let selected: TrieNode['select'];
      for (const n of nodes) {
        if (n.select && (!selected || n.select.order < selected.order)) selected = n.select;
        if (n.subject) {
          subject = subjectBytes(value, this.selection.subjectPath!);
          subjectAt = { container, key };
        }
      }
      if (selected) {
        const leaf = leafOf(type);
        if (leaf && value !== null && value !== undefined) locations.push({ container, key, path: selected.path, ...leaf });
        return;
      }
      walk(type, value, nodes);
    };
    const walk = (type: Type, value: unknown, nodes: TrieNode[]): void => {
      if (nodes.length === 0 || value === null || value === undefined) return;
      const name = type.typeName;
      if (name === 'record' || name === 'error') {
        for (const field of (type as avro.types.RecordType).fields) {
          const next = children(nodes, (n) => n.names.get(field.name));
          if (next.length > 0) visit(field.type, value as Record<string, unknown>, field.name, next);
        }
      } else if (name === 'array') {
        const items = (type as avro.types.ArrayType).itemsType;
        (value as unknown[]).forEach((_, index) => {
          const next = children(nodes, (n) => n.indexes.get(index));
          if (next.length > 0) visit(items, value as unknown[], index, next);
        });
      } else if (name === 'map') {
        const values = (type as avro.types.MapType).valuesType;
        for (const key of Object.keys(value as object)) {
          const next = children(nodes, (n) => n.names.get(key));
          if (next.length > 0) visit(values, value as Record<string, unknown>, key, next);
        }
      } else if (name.startsWith('union')) {
        const branch = branchOf(type as UnionType, value);
        if (!branch) return;
        if (branch.value === value) walk(branch.type, value, nodes);
        else visit(branch.type, value as Record<string, unknown>, Object.keys(value as object)[0], nodes);
      }
    };
    walk(this.type, record, [this.selector.root]);
    if (this.selection.subjectPath && !subject) throw new RecordError(`no subject: ${this.selection.subjectPath.text} is missing from the value`);
    return { locations, subject, subjectAt };
  }

  /** Puts `text` in the subject field (a pseudonym, or the subject id it stands for): a string field only. */
  private setSubject(at: { container: Container; key: string | number } | undefined, text: string): void {
    const holder = at?.container as Record<string | number, unknown> | undefined;
    if (!at || typeof holder![at.key] !== 'string') throw new RecordError(subjectNotStringReason(this.selection.subjectPath));
    holder![at.key] = text;
  }

  /** The record encoded behind the frame's header, in one buffer (`sizeHint`: the payload's likely size). */
  private encode(frame: RegistryFrame, record: Record<string, unknown>, sizeHint: number): Buffer {
    const start = frame.header.length;
    let out = Buffer.allocUnsafe(start + sizeHint);
    let end = this.type.encode(record, out, start);
    if (end < 0) {
      out = Buffer.allocUnsafe(out.length - end); // (avsc says how many bytes were missing)
      end = this.type.encode(record, out, start);
    }
    frame.header.copy(out, 0);
    return out.subarray(0, end);
  }

  scanPlain(value: Uint8Array): PlainValue {
    const { frame, record } = this.decode(value);
    const { locations, subject, subjectAt } = this.locate(record);
    return {
      subject,
      fields: locations.map((at) => {
        const field = (at.container as Record<string | number, unknown>)[at.key] as string | Buffer;
        return { path: at.path, plaintext: typeof field === 'string' ? Buffer.from(field, 'utf8') : field };
      }),
      withSealed: (envelopes, pseudonym) => {
        let growth = pseudonym ? 32 : 0;
        if (pseudonym) this.setSubject(subjectAt, subjectPseudonymText(pseudonym));
        locations.forEach((at, k) => {
          (at.container as Record<string | number, unknown>)[at.key] = at.kind === 'string' ? sealedFieldText(envelopes[k]) : sealedFieldBytes(envelopes[k]);
          growth += Math.ceil((envelopes[k].length * 4) / 3) + 8; // (prefix, base64url, a longer length varint)
        });
        return this.encode(frame, record, frame.payload.length + growth);
      },
    };
  }

  scanSealed(value: Uint8Array): SealedValue {
    const { frame, record } = this.decode(value);
    const { locations, subject, subjectAt } = this.locate(record);
    const fields = locations.map((at) => {
      const field = (at.container as Record<string | number, unknown>)[at.key];
      return { path: at.path, envelope: typeof field === 'string' ? envelopeOfFieldText(field) : envelopeOfFieldBytes(field as Buffer) };
    });
    return {
      subject,
      pseudonym: subject && pseudonymOfSubjectText(Buffer.from(subject).toString('utf8')),
      fields,
      withOpened: (opened: readonly (OpenedField | undefined)[], subjectId?: Uint8Array) => {
        if (subjectId) this.setSubject(subjectAt, Buffer.from(subjectId).toString('utf8'));
        locations.forEach((at, k) => {
          const field = opened[k];
          if (fields[k].envelope === undefined || field === undefined) return;
          let restored: unknown;
          if (field === null) restored = at.nullable ? null : at.kind === 'string' ? '' : Buffer.alloc(0);
          else if (at.kind === 'bytes') restored = Buffer.from(field);
          else restored = decryptedText(field, 'a decrypted string field is not valid UTF-8');
          (at.container as Record<string | number, unknown>)[at.key] = restored;
        });
        return this.encode(frame, record, frame.payload.length);
      },
    };
  }
}


/** A subject field's value as subject id bytes: a string's UTF-8 bytes, an integer's decimal text. */
function subjectBytes(value: unknown, path: JsonPath): Uint8Array {
  let text: string | undefined;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value))) text = value.toString();
  if (!text) throw new RecordError(`no subject: ${path.text} must be a non-empty string or an integer`);
  return Buffer.from(text, 'utf8');
}

/** A record field as written in the schema's JSON: its name and attributes (avsc keeps neither tags nor other attributes). */
interface RawField {
  name: string;
  'confluent:tags'?: unknown;
}

/**
 * The paths of the fields tagged with one of `tags`, from the top-level record, through records, arrays,
 * maps and unions. A JSON path names one depth, so tagged fields below a recursion (a record that holds
 * itself) cannot be selected: each such place is a problem, rather than fields left in clear.
 */
function taggedPaths(root: Type, rawRecords: Map<string, RawField[]>, tags: Set<string>, id: number): { paths: string[]; problems: string[] } {
  const found: string[] = [];
  const taggedWithin = new Map<string, boolean>();
  const recursions: { at: string; record: string }[] = [];
  /** Whether a tagged field is within `type`. */
  const walk = (type: Type, at: string, enclosing: Set<string>): boolean => {
    const name = type.typeName;
    if (name === 'record' || name === 'error') {
      const record = type.name!;
      if (enclosing.has(record)) {
        recursions.push({ at, record });
        return false;
      }
      const inner = new Set(enclosing).add(record);
      const raw = rawRecords.get(record) ?? [];
      let tagged = false;
      for (const field of (type as avro.types.RecordType).fields) {
        const fieldTags = raw.find((f) => f.name === field.name)?.['confluent:tags'];
        const path = `${at}.${field.name}`;
        if (Array.isArray(fieldTags) && fieldTags.some((tag) => tags.has(tag as string))) {
          found.push(path);
          tagged = true;
        } else if (walk(field.type, path, inner)) tagged = true;
      }
      taggedWithin.set(record, (taggedWithin.get(record) ?? false) || tagged);
      return tagged;
    }
    if (name === 'array') return walk((type as avro.types.ArrayType).itemsType, `${at}[*]`, enclosing);
    if (name === 'map') return walk((type as avro.types.MapType).valuesType, `${at}[*]`, enclosing);
    if (name.startsWith('union')) return (type as UnionType).types.map((branch) => walk(branch, at, enclosing)).some(Boolean);
    return false;
  };
  walk(root, '$', new Set());
  const problems = recursions
    .filter(({ record }) => taggedWithin.get(record))
    .map(({ at, record }) => `${at} holds record ${record} again, whose tagged fields a path cannot reach at every depth (schema id ${id}): select them by path, or untag them`);
  return { paths: [...new Set(found)], problems };
}

/** Parses a schema's text, and those it references first (their named types are the registry it resolves against). */
function parseSchema(schema: ResolvedSchema): { type: Type; rawRecords: Map<string, RawField[]> } {
  const rawRecords = new Map<string, RawField[]>();
  const registry: Record<string, Type> = { long: longAsBigInt as unknown as Type };
  // (avsc drops field attributes such as confluent:tags: the hook keeps each record's fields as written)
  const typeHook = (raw: unknown, options: { namespace?: string }) => {
    const record = raw as { type?: unknown; name?: unknown; namespace?: unknown; fields?: unknown };
    if ((record.type === 'record' || record.type === 'error') && typeof record.name === 'string' && Array.isArray(record.fields)) {
      const namespace = typeof record.namespace === 'string' ? record.namespace : options.namespace;
      const fullName = record.name.includes('.') || !namespace ? record.name : `${namespace}.${record.name}`;
      rawRecords.set(fullName, record.fields as RawField[]);
    }
    return undefined;
  };
  const parse = (text: string, id: string): Type => {
    try {
      return avro.Type.forSchema(JSON.parse(text) as avro.Schema, { registry, typeHook, wrapUnions: 'auto' });
    } catch (err) {
      throw new RecordError(`schema ${id} is not an Avro schema this processor can read (${(err as Error).message.slice(0, 160)})`);
    }
  };
  for (const { name, schema: referenced } of schema.referenced) parse(referenced.schema, `${JSON.stringify(name)} (referenced by id ${schema.id})`);
  return { type: parse(schema.schema, `id ${schema.id}`), rawRecords };
}

export const avroFields: SchemaFormat = {
  schemaType: 'AVRO',
  compile(schema: ResolvedSchema, selection: RegistrySelection): SchemaFields {
    const { type, rawRecords } = parseSchema(schema);
    return new AvroSchemaFields(schema.id, type, rawRecords, selection);
  },
};
