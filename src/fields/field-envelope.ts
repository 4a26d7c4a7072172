// How an encrypted field looks in the JSON value (contract, "Wire format v1", field mode): the JSON
// string "shr1:" + base64url(envelope), no padding. The envelope is the usual v1 envelope; its
// plaintext is the field's JSON text and its associated data binds the subject and the field's path.
import { EnvelopeError } from '../wire/envelope.js';

export const FIELD_PREFIX = 'shr1:';
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The JSON string token replacing an encrypted field's value. */
export function fieldToken(envelope: Uint8Array): string {
  return `"${FIELD_PREFIX}${Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength).toString('base64url')}"`;
}

/**
 * The envelope inside a field value's JSON text, or undefined when the value is not an encrypted field
 * (not a string starting with "shr1:": it was never encrypted and is left as it is). EnvelopeError when
 * it claims to be one but its base64url is broken.
 */
export function fieldEnvelope(valueText: string): Buffer | undefined {
  if (!valueText.startsWith(`"${FIELD_PREFIX}`)) return undefined;
  const text = valueText.includes('\\') ? (JSON.parse(valueText) as string) : valueText.slice(1, -1);
  const encoded = text.slice(FIELD_PREFIX.length);
  if (!BASE64URL.test(encoded) || encoded.length % 4 === 1) throw new EnvelopeError('encrypted field is not valid base64url');
  return Buffer.from(encoded, 'base64url'); // a Buffer like whole values: one element kind on the hot path
}

/**
 * With pseudonymous record keys (SHREDDER_RECORD_KEYS=pseudonym) the subject field of a JSON value holds
 * its key generation's pseudonym instead of the subject id: the string "shp1:" + base64url(pseudonym).
 */
export const SUBJECT_PSEUDONYM_PREFIX = 'shp1:';
const SUBJECT_PSEUDONYM = /^shp1:([A-Za-z0-9_-]{22})$/;

/** A subject field's string holding a pseudonym (registry formats: a string field). */
export function subjectPseudonymText(pseudonym: Uint8Array): string {
  return `${SUBJECT_PSEUDONYM_PREFIX}${Buffer.from(pseudonym.buffer, pseudonym.byteOffset, pseudonym.byteLength).toString('base64url')}`;
}

/** The JSON string token of a subject field holding a pseudonym. */
export function subjectPseudonymToken(pseudonym: Uint8Array): string {
  return `"${subjectPseudonymText(pseudonym)}"`;
}

/** Why a record's subject field cannot take its pseudonym: it is not a string (every format says it alike). */
export const subjectNotStringReason = (subjectPath: { text: string } | undefined): string =>
  `with pseudonymous record keys the subject field ${subjectPath?.text ?? ''} must be a string`;

/** The pseudonym a subject field's text (the string's value) holds, or undefined when it holds a subject id. */
export function pseudonymOfSubjectText(text: string): Buffer | undefined {
  const match = SUBJECT_PSEUDONYM.exec(text);
  return match ? Buffer.from(match[1], 'base64url') : undefined;
}

// Registry formats (Avro, Protobuf, JSON Schema) keep a field's declared type: a string field holds the
// text "shr1:" + base64url(envelope), a bytes field the ASCII bytes "shr1:" then the envelope itself.
const PREFIX_BYTES = Buffer.from(FIELD_PREFIX, 'latin1');

/** A string field's encrypted value. */
export function sealedFieldText(envelope: Uint8Array): string {
  return FIELD_PREFIX + Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength).toString('base64url');
}

/** The envelope in a string field's value, or undefined when it is not encrypted; EnvelopeError when its base64url is broken. */
export function envelopeOfFieldText(text: string): Buffer | undefined {
  if (!text.startsWith(FIELD_PREFIX)) return undefined;
  const encoded = text.slice(FIELD_PREFIX.length);
  if (!BASE64URL.test(encoded) || encoded.length % 4 === 1) throw new EnvelopeError('encrypted field is not valid base64url');
  return Buffer.from(encoded, 'base64url');
}

/** A bytes field's encrypted value. */
export function sealedFieldBytes(envelope: Uint8Array): Buffer {
  return Buffer.concat([PREFIX_BYTES, envelope]);
}

/** The envelope in a bytes field's value (a view, not a copy), or undefined when it is not encrypted. */
export function envelopeOfFieldBytes(bytes: Uint8Array): Buffer | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.length >= PREFIX_BYTES.length && PREFIX_BYTES.equals(buffer.subarray(0, PREFIX_BYTES.length)) ? buffer.subarray(PREFIX_BYTES.length) : undefined;
}
