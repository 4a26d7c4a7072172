// Field-level encryption settings (SHREDDER_FIELDS, SHREDDER_FIELD_TAGS, SHREDDER_SUBJECT_FIELD): which
// fields of a value are sealed, where the subject id is, and what a shredded field becomes when
// decrypted. Values are JSON, or with a schema registry, in its wire format (Avro, Protobuf, JSON Schema).
import type { FieldFormat } from '../formats/field-format.js';
import { JsonFieldFormat } from '../formats/json-field-format.js';
import { REGISTRY_FORMATS } from '../formats/registry/formats.js';
import { RegistryFieldFormat } from '../formats/registry/registry-field-format.js';
import type { SchemaRegistryClient } from '../schema-registry/client.js';
import { compileSelector, type FieldSelector } from './json-fields.js';
import { parseJsonPath, type JsonPath } from './json-path.js';

export interface FieldMode {
  /** The fields to encrypt, in configuration order. */
  paths: JsonPath[];
  /** Where the subject id is in the value; undefined: the record key. */
  subjectPath?: JsonPath;
  /** How a value's fields are found, sealed and put back (formats/field-format.ts). */
  format: FieldFormat;
  /** With a schema registry: the registry format, whose start check reads the input topics' schemas. */
  registryFormat?: RegistryFieldFormat;
}

/** Values in the schema registry wire format: fields also chosen by schema tags. */
export interface RegistryFieldOptions {
  client: SchemaRegistryClient;
  /** SHREDDER_FIELD_TAGS. */
  tags?: readonly string[];
}

/**
 * Field mode as configured, or undefined for whole values (no field paths, no tags). JSON field mode
 * turns a shredded field into `shreddedValue` (JSON text, default `null`); registry formats into null
 * where the schema allows it, else an empty string or empty bytes.
 */
export function fieldMode(fields: readonly string[] | undefined, subjectField: string | undefined, shreddedValue = 'null', registry?: RegistryFieldOptions): FieldMode | undefined {
  const tags = registry?.tags ?? [];
  if ((!fields || fields.length === 0) && tags.length === 0) return undefined;
  const paths = (fields ?? []).map(parseJsonPath);
  const subjectPath = subjectField ? parseJsonPath(subjectField) : undefined;
  if (registry) {
    const registryFormat = new RegistryFieldFormat(registry.client, { paths, tags, subjectPath }, REGISTRY_FORMATS);
    return { paths, subjectPath, format: registryFormat, registryFormat };
  }
  const selector: FieldSelector = compileSelector(paths, subjectPath);
  return { paths, subjectPath, format: new JsonFieldFormat({ selector, subjectPath }, shreddedValue) };
}

/** A field path's UTF-8 bytes (bound in each field envelope's associated data), computed once per path. */
const pathBytesCache = new WeakMap<JsonPath, Uint8Array>();
export function pathBytes(path: JsonPath): Uint8Array {
  let bytes = pathBytesCache.get(path);
  if (!bytes) pathBytesCache.set(path, (bytes = new Uint8Array(Buffer.from(path.text, 'utf8'))));
  return bytes;
}
