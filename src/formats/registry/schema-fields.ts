// What a registry format (Avro, Protobuf, JSON Schema) implements: a registered schema, compiled once
// against the field selection, scans the values written with it. RegistryFieldFormat
// (registry-field-format.ts) fetches the schemas, keeps one SchemaFields per schema id and hands each
// value to its schema's; the formats never talk to the registry.
//
// Paths are JSON paths over the record as its schema describes it: `$.email` a field of the top-level
// record or message, `$.address.street` a field of a nested one, `[*]` every element of an array (a
// repeated field) and every value of a map, `[2]` one element. A union (Avro) or oneof (Protobuf) is
// looked through. A field selected by a schema tag gets the path it has in that schema.
//
// Encrypted representation (docs/wire-format.md): a selected field must be a string or bytes field
// (Avro: possibly in a union with null; JSON Schema: a property whose type allows a string). A string
// field becomes sealedFieldText(envelope), a bytes field sealedFieldBytes(envelope), so the record
// stays valid under the same schema id and every non-personal field stays readable by the usual
// deserializer. Each envelope's plaintext is the field's value (a string's UTF-8 bytes, the bytes
// themselves; JSON Schema: the field's JSON text, as JSON field mode) and its associated data binds the
// subject and the field's path text, as in JSON field mode.
import type { JsonPath } from '../../fields/json-path.js';
import type { RegistrySchema, SchemaType } from '../../schema-registry/client.js';
import type { PlainValue, SealedValue } from '../field-format.js';

/** Which fields are encrypted, and where the subject is (SHREDDER_FIELDS, SHREDDER_FIELD_TAGS, SHREDDER_SUBJECT_FIELD). */
export interface RegistrySelection {
  /** Fields by path. */
  paths: readonly JsonPath[];
  /** Fields by schema tag (Avro `confluent:tags`, the Protobuf `confluent.field_meta` option's tags, JSON Schema `confluent:tags`). */
  tags: readonly string[];
  /** Where the subject id is: a string field (its UTF-8 bytes) or an integer field (its decimal text); undefined: the record key. */
  subjectPath?: JsonPath;
}

/** A schema as registered, with every schema it references (transitively, each once, dependencies first). */
export interface ResolvedSchema extends RegistrySchema {
  referenced: { name: string; schema: RegistrySchema }[];
}

/** One schema compiled against the selection. */
export interface SchemaFields {
  /**
   * Selected fields this schema cannot carry encrypted, each naming the field and why ("$.age is an int:
   * only string and bytes fields can be encrypted"); empty when every selected field can. A value of a
   * schema with problems is the record's fault (dead-lettered), and a problem in the latest schema of an
   * input topic stops the processor at start.
   */
  readonly problems: readonly string[];
  /** The configured paths (SHREDDER_FIELDS, as written) that name a field of this schema: a path no input topic's schema has is refused at start. */
  readonly matchedPaths: ReadonlySet<string>;
  /** The paths of the fields this schema encrypts (configured and tagged), for logs and docs. */
  readonly encryptedPaths: readonly string[];
  /** The selected fields and subject of a plaintext value (the whole framed value); RecordError when it does not decode. */
  scanPlain(value: Uint8Array): PlainValue;
  /** The selected fields and subject of an encrypted value (the whole framed value). */
  scanSealed(value: Uint8Array): SealedValue;
}

/** One registry schema type's implementation. */
export interface SchemaFormat {
  readonly schemaType: SchemaType;
  /** Compiles `schema`; RecordError when its text cannot be parsed (the records naming it are dead-lettered). */
  compile(schema: ResolvedSchema, selection: RegistrySelection): SchemaFields;
}
