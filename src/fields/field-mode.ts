// Field-level encryption settings (SHREDDER_FIELDS, SHREDDER_SUBJECT_FIELD): which fields of a JSON
// value are sealed, where the subject id is, and what a shredded field becomes when decrypted.
import type { FieldFormat } from '../formats/field-format.js';
import { JsonFieldFormat } from '../formats/json-field-format.js';
import { compileSelector, type FieldSelector } from './json-fields.js';
import { parseJsonPath, type JsonPath } from './json-path.js';

export interface FieldMode {
  /** The fields to encrypt, in configuration order. */
  paths: JsonPath[];
  /** Where the subject id is in the value; undefined: the record key. */
  subjectPath?: JsonPath;
  /** JSON text a shredded field becomes when decrypted (default `null`). */
  shreddedValue: string;
  /** The paths compiled for one scan per record. */
  selector: FieldSelector;
  /** How a value's fields are found, sealed and put back (formats/field-format.ts). */
  format: FieldFormat;
}

export function fieldMode(fields: readonly string[] | undefined, subjectField: string | undefined, shreddedValue = 'null'): FieldMode | undefined {
  if (!fields || fields.length === 0) return undefined;
  const paths = fields.map(parseJsonPath);
  const subjectPath = subjectField ? parseJsonPath(subjectField) : undefined;
  const selector = compileSelector(paths, subjectPath);
  return { paths, subjectPath, shreddedValue, selector, format: new JsonFieldFormat({ selector, subjectPath }, shreddedValue) };
}

/** A field path's UTF-8 bytes (bound in each field envelope's associated data), computed once per path. */
const pathBytesCache = new WeakMap<JsonPath, Uint8Array>();
export function pathBytes(path: JsonPath): Uint8Array {
  let bytes = pathBytesCache.get(path);
  if (!bytes) pathBytesCache.set(path, (bytes = new Uint8Array(Buffer.from(path.text, 'utf8'))));
  return bytes;
}
