// Field mode for JSON values (SHREDDER_FIELDS, SHREDDER_SUBJECT_FIELD): a selected field's JSON text
// is sealed, and replaced by the JSON string "shr1:" + base64url(envelope) (contract, "Wire format v1",
// field mode). The scanning and splicing live in src/fields/.
import { fieldEnvelope, fieldToken, pseudonymOfSubjectText, subjectNotStringReason, subjectPseudonymToken } from '../fields/field-envelope.js';
import { compileSelector, JsonValueError, scanJsonObject, spliceFields, type FieldSelector, type ScannedJson } from '../fields/json-fields.js';
import { parseJsonPath, type JsonPath } from '../fields/json-path.js';
import { decryptedText } from './decrypted-text.js';
import type { FieldFormat, OpenedField, PlainValue, SealedValue } from './field-format.js';


/** What a JSON value is scanned for: the selected fields (compiled) and where the subject is. */
export interface JsonSelection {
  selector: FieldSelector;
  /** Where the subject id is in the value; undefined: the record key. */
  subjectPath?: JsonPath;
}

/** The selection of SHREDDER_FIELDS and SHREDDER_SUBJECT_FIELD as written. */
export function jsonSelection(fields: readonly string[], subjectField?: string): JsonSelection {
  const subjectPath = subjectField ? parseJsonPath(subjectField) : undefined;
  return { selector: compileSelector(fields.map(parseJsonPath), subjectPath), subjectPath };
}

/** A record value scanned for its fields and, when SHREDDER_SUBJECT_FIELD is set, its subject. */
export interface FieldRecordScan extends ScannedJson {
  /** The subject id from the value, or undefined when the record key is the subject. */
  subjectBytes?: Uint8Array;
}

/** A Buffer, like a record key: subjects of either mode are one element kind on the hot path. */
const utf8 = (text: string) => Buffer.from(text, 'utf8');

/** Scans a record value; JsonValueError when it is not a JSON object or lacks its subject. */
export function scanRecord(value: Uint8Array, mode: JsonSelection): FieldRecordScan {
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


/** Whether the scanned subject field is a JSON string (not a number). */
const isStringAt = (scanned: ScannedJson): boolean => scanned.subject !== undefined && scanned.text.charCodeAt(scanned.subject.start) === 0x22;

/** The text with each span replaced, and the subject field too when `subjectText` is given (spans in order: it is never inside one). */
function spliceWithSubject(scanned: ScannedJson, replacements: readonly string[], subjectText: string | undefined): string {
  const { text, spans, subject } = scanned;
  if (subjectText === undefined || !subject) return spliceFields(text, spans, replacements);
  const at = spans.findIndex((span) => span.start > subject.start);
  const position = at < 0 ? spans.length : at;
  const subjectSpan = { start: subject.start, end: subject.end } as (typeof spans)[number]; // (spliceFields reads only where a span is)
  return spliceFields(text, [...spans.slice(0, position), subjectSpan, ...spans.slice(position)], [...replacements.slice(0, position), subjectText, ...replacements.slice(position)]);
}

export class JsonFieldFormat implements FieldFormat {
  readonly name = 'json';

  /** `shreddedValue`: the JSON text a shredded field becomes, one for all or per field (JSON Schema: as its schema allows). */
  constructor(private readonly selection: JsonSelection, private readonly shreddedValue: string | ((path: JsonPath) => string)) {}

  scanPlain(value: Uint8Array): PlainValue {
    const scanned = scanRecord(value, this.selection);
    const { text, spans, subjectBytes } = scanned;
    return {
      subject: subjectBytes,
      // (a Buffer per field, as whole values are: one element kind on the sealing path)
      fields: spans.map((span) => ({ path: span.path, plaintext: Buffer.from(text.slice(span.start, span.end), 'utf8') })),
      withSealed: (envelopes, pseudonym) => {
        if (pseudonym && !isStringAt(scanned)) throw new JsonValueError(subjectNotStringReason(this.selection.subjectPath));
        return Buffer.from(spliceWithSubject(scanned, envelopes.map(fieldToken), pseudonym && subjectPseudonymToken(pseudonym)), 'utf8');
      },
    };
  }

  scanSealed(value: Uint8Array): SealedValue {
    const scanned = scanRecord(value, this.selection);
    const { text, spans, subjectBytes } = scanned;
    const fields = spans.map((span) => ({ path: span.path, envelope: fieldEnvelope(text.slice(span.start, span.end)) }));
    return {
      subject: subjectBytes,
      pseudonym: subjectBytes && isStringAt(scanned) ? pseudonymOfSubjectText(Buffer.from(subjectBytes).toString('utf8')) : undefined,
      fields,
      withOpened: (opened: readonly (OpenedField | undefined)[], subject?: Uint8Array) => {
        const replacements = spans.map((span, k) => {
          const field = opened[k];
          if (fields[k].envelope === undefined || field === undefined) return text.slice(span.start, span.end); // never encrypted: as it is
          if (field === null) return typeof this.shreddedValue === 'string' ? this.shreddedValue : this.shreddedValue(span.path);
          return decryptedText(field, 'a decrypted field is not valid UTF-8 JSON text');
        });
        return Buffer.from(spliceWithSubject(scanned, replacements, subject && JSON.stringify(Buffer.from(subject).toString('utf8'))), 'utf8');
      },
    };
  }
}
