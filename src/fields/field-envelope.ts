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
