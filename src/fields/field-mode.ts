// Field-level encryption settings (SHREDDER_FIELDS, SHREDDER_SUBJECT_FIELD): which fields of a JSON
// value are sealed, where the subject id is, and what a shredded field becomes when decrypted.
import { compileSelector, JsonValueError, scanJsonObject, type FieldSelector, type ScannedJson } from './json-fields.js';
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
}

export function fieldMode(fields: readonly string[] | undefined, subjectField: string | undefined, shreddedValue = 'null'): FieldMode | undefined {
  if (!fields || fields.length === 0) return undefined;
  const paths = fields.map(parseJsonPath);
  const subjectPath = subjectField ? parseJsonPath(subjectField) : undefined;
  return { paths, subjectPath, shreddedValue, selector: compileSelector(paths, subjectPath) };
}

/** A record value scanned for its fields and, when SHREDDER_SUBJECT_FIELD is set, its subject. */
export interface FieldRecordScan extends ScannedJson {
  /** The subject id from the value, or undefined when the record key is the subject. */
  subjectBytes?: Uint8Array;
}

/** A Buffer, like a record key: subjects of either mode are one element kind on the hot path. */
const utf8 = (text: string) => Buffer.from(text, 'utf8');

/** Scans a record value; JsonValueError when it is not a JSON object or lacks its subject. */
export function scanRecord(value: Uint8Array, mode: FieldMode): FieldRecordScan {
  const scanned = scanJsonObject(value, mode.selector);
  if (!mode.subjectPath) return scanned;
  return { ...scanned, subjectBytes: subjectAt(scanned, mode.subjectPath) };
}

/** The subject id at `path` in a scanned JSON text: a string's UTF-8 bytes, or a number as written. */
function subjectAt(scanned: ScannedJson, path: JsonPath): Uint8Array {
  if (!scanned.subject) throw new JsonValueError(`no subject: ${path.text} is missing from the value`);
  const token = scanned.text.slice(scanned.subject.start, scanned.subject.end);
  const first = token.charCodeAt(0);
  let subject: Uint8Array | undefined;
  if (first === 0x22) subject = utf8(JSON.parse(token) as string);
  else if (first === 0x2d || (first >= 0x30 && first <= 0x39)) subject = utf8(token);
  if (!subject || subject.length === 0) throw new JsonValueError(`no subject: ${path.text} must be a non-empty string or a number`);
  return subject;
}

/** A field path's UTF-8 bytes (bound in each field envelope's associated data), computed once per path. */
const pathBytesCache = new WeakMap<JsonPath, Uint8Array>();
export function pathBytes(path: JsonPath): Uint8Array {
  let bytes = pathBytesCache.get(path);
  if (!bytes) pathBytesCache.set(path, (bytes = new Uint8Array(Buffer.from(path.text, 'utf8'))));
  return bytes;
}
