// Field mode for values in the schema registry wire format (SHREDDER_SCHEMA_REGISTRY_URL): each value
// names its schema by id, and the schema's type picks the format (Avro, Protobuf, JSON Schema) that
// finds, seals and restores its fields. Schemas are fetched before a batch's synchronous stages
// (`prepare`), compiled once per id against the selection, and kept: ids are immutable.
//
// Whose fault: a value that is not a registry frame, names an id the registry does not have, or whose
// schema cannot carry its selected fields encrypted is the record's (dead-lettered); a registry that
// cannot be reached is nobody's record's (TransientError: the batch is retried).
import { RecordError } from '../../errors/shredder-errors.js';
import type { RegistrySchema, SchemaRegistryClient, SchemaType } from '../../schema-registry/client.js';
import { parseRegistryFrame, REGISTRY_HEADER_BYTES, REGISTRY_MAGIC_BYTE } from '../../wire/registry-framing.js';
import type { FieldFormat, PlainValue, SealedValue } from '../field-format.js';
import type { RegistrySelection, ResolvedSchema, SchemaFields, SchemaFormat } from './schema-fields.js';

const UNKNOWN_ID_RETRY_MS = 10_000;
/** Schemas fetched at once. */
const FETCH_CONCURRENCY = 8;
/** Unknown ids remembered at most (the oldest forgotten first): made-up ids cannot grow memory. */
const MAX_UNKNOWN_IDS = 10_000;

/** How deep references may nest: a cycle in the registry must not hang a batch. */
const MAX_REFERENCE_DEPTH = 32;

export class RegistryFieldFormat implements FieldFormat {
  readonly name = 'schema-registry';
  /** Each schema id's fields, or why its schema cannot serve (kept alike: an id's schema never changes). */
  private readonly compiled = new Map<number, SchemaFields | RecordError>();
  /**
   * Ids the registry said it does not have, each asked again after UNKNOWN_ID_RETRY_MS (it may be
   * registered late), so junk naming made-up ids costs the registry one request per id per period.
   */
  private readonly unknown = new Map<number, { error: RecordError; askAgainAt: number }>();
  private readonly formats: ReadonlyMap<SchemaType, SchemaFormat>;

  constructor(private readonly registry: SchemaRegistryClient, private readonly selection: RegistrySelection, formats: readonly SchemaFormat[]) {
    this.formats = new Map(formats.map((format) => [format.schemaType, format]));
  }

  prepare(values: readonly (Uint8Array | null)[]): Promise<void> | undefined {
    let missing: Set<number> | undefined;
    const now = Date.now();
    // (forgotten here, between batches, never during one: every id of a batch stays known while it is scanned)
    for (const [id, { askAgainAt }] of this.unknown) {
      if (askAgainAt > now && this.unknown.size <= MAX_UNKNOWN_IDS) break;
      this.unknown.delete(id);
    }
    for (const value of values) {
      if (!value || value.length < REGISTRY_HEADER_BYTES || value[0] !== REGISTRY_MAGIC_BYTE) continue; // (scanning says what is wrong)
      const id = Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32BE(1);
      if (this.compiled.has(id) || (this.unknown.get(id)?.askAgainAt ?? 0) > now) continue;
      (missing ??= new Set()).add(id);
    }
    return missing && this.fetch([...missing]);
  }

  /** Fetches and compiles `ids`, a few at a time: a batch of junk naming thousands of ids must not open thousands of connections. */
  private async fetch(ids: number[]): Promise<void> {
    const queue = [...ids];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          this.compiled.set(id, await this.compile(await this.registry.schemaById(id)));
          this.unknown.delete(id);
        } catch (err) {
          if (!(err instanceof RecordError)) throw err;
          this.unknown.delete(id); // (re-inserted: the map's order is the order to forget in)
          this.unknown.set(id, { error: err, askAgainAt: Date.now() + UNKNOWN_ID_RETRY_MS });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(FETCH_CONCURRENCY, queue.length) }, worker));
  }

  /**
   * Checks the latest value schema of each topic (subject `<topic>-value`, the serializers' default
   * naming) against the selection: a selected field that cannot be encrypted, and a configured path
   * that names a field of none of them, are problems to refuse a start for. A topic with no schema yet
   * is left unchecked: its records' schemas are checked as they arrive.
   */
  async checkTopics(topics: readonly string[]): Promise<{ problems: string[]; unchecked: string[] }> {
    const problems: string[] = [];
    const unchecked: string[] = [];
    const matched = new Set<string>();
    for (const topic of topics) {
      const subject = `${topic}-value`;
      const latest = await this.registry.latestForSubject(subject);
      if (!latest) {
        unchecked.push(topic);
        continue;
      }
      const fields = await this.compile(latest);
      this.compiled.set(latest.id, fields);
      const where = `topic ${topic} (subject ${subject} version ${latest.version}, schema id ${latest.id})`;
      if (fields instanceof RecordError) {
        problems.push(`${where}: ${fields.message}`);
        continue;
      }
      for (const problem of fields.problems) problems.push(`SHREDDER_FIELDS/SHREDDER_FIELD_TAGS: ${where}: ${problem}`);
      for (const path of fields.matchedPaths) matched.add(path);
    }
    if (unchecked.length === 0) {
      for (const path of this.selection.paths) {
        if (!matched.has(path.text)) problems.push(`SHREDDER_FIELDS: ${path.text} names no field of the latest value schema of ${topics.join(', ')}`);
      }
    }
    return { problems, unchecked };
  }

  /** The fields of a schema, or why it cannot serve (kept, as a schema is). */
  private async compile(schema: RegistrySchema): Promise<SchemaFields | RecordError> {
    const format = this.formats.get(schema.schemaType);
    if (!format) return new RecordError(`schema id ${schema.id} is a ${schema.schemaType} schema: field mode reads Avro, Protobuf and JSON Schema`);
    try {
      return format.compile({ ...schema, referenced: await this.referenced(schema) }, this.selection);
    } catch (err) {
      if (err instanceof RecordError) return err;
      throw err;
    }
  }

  /** Every schema `schema` references, transitively, each once, dependencies first. */
  private async referenced(schema: RegistrySchema): Promise<ResolvedSchema['referenced']> {
    const resolved: ResolvedSchema['referenced'] = [];
    const seen = new Set<string>();
    const visit = async (of: RegistrySchema, depth: number): Promise<void> => {
      if (depth > MAX_REFERENCE_DEPTH) throw new RecordError(`schema id ${schema.id} has references nested deeper than ${MAX_REFERENCE_DEPTH}`);
      for (const reference of of.references) {
        const key = `${reference.subject}\u0000${reference.version}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const target = await this.registry.subjectVersion(reference.subject, reference.version);
        if (!target) throw new RecordError(`schema id ${schema.id} references ${reference.subject} version ${reference.version}, which the schema registry does not have`);
        await visit(target, depth + 1);
        resolved.push({ name: reference.name, schema: target });
      }
    };
    await visit(schema, 0);
    return resolved;
  }

  private fieldsOf(value: Uint8Array): SchemaFields {
    const { schemaId } = parseRegistryFrame(value);
    const fields = this.compiled.get(schemaId);
    if (fields instanceof RecordError) throw fields;
    if (fields) {
      if (fields.problems.length > 0) throw new RecordError(`schema id ${schemaId} cannot carry its selected fields encrypted: ${fields.problems.join('; ')}`);
      return fields;
    }
    const unknown = this.unknown.get(schemaId);
    if (unknown) throw unknown.error;
    throw new Error(`schema id ${schemaId} was not fetched: prepare() the batch before scanning it`);
  }

  scanPlain(value: Uint8Array): PlainValue {
    return this.fieldsOf(value).scanPlain(value);
  }

  scanSealed(value: Uint8Array): SealedValue {
    return this.fieldsOf(value).scanSealed(value);
  }
}
