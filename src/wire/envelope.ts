// Wire format v1 of an encrypted value (contract: "Wire format v1: an encrypted value").
//
//   0  1  version 0x01
//   1  1  algorithm (0x01 ChaCha20-Poly1305, 0x02 AES-256-GCM)
//   2  8  key id (names one generation of the subject's data key)
//  10 12  nonce
//  22  n  ciphertext
//  22+n 16 tag
//
// Associated data = the 22 header bytes || subject id bytes, so a record moved to another subject or
// re-labelled with another key id fails authentication.
import { RecordError } from '../errors/shredder-errors.js';
import { algorithmId, type AlgorithmId } from '../crypto/aead-algorithms.js';

export const ENVELOPE_VERSION = 0x01;
export const ENVELOPE_HEADER_BYTES = 22;
export const KEY_ID_BYTES = 8;
export const ENVELOPE_NONCE_BYTES = 12;
/** The nonce follows version, algorithm and key id. */
export const ENVELOPE_NONCE_AT = 2 + KEY_ID_BYTES;
export const ENVELOPE_TAG_BYTES = 16;
export const ENVELOPE_OVERHEAD = ENVELOPE_HEADER_BYTES + ENVELOPE_TAG_BYTES;

/** Why a value is not a readable v1 envelope; the text goes into `shredder.error`. */
export class EnvelopeError extends RecordError {
  override readonly name: string = 'EnvelopeError';
}

export interface Envelope {
  algorithm: AlgorithmId;
  keyId: Uint8Array;
  nonce: Uint8Array;
  /** The 22 header bytes (the first part of the associated data). */
  header: Uint8Array;
  /** ciphertext || tag */
  sealed: Uint8Array;
}

/** The header bytes before the nonce (version, algorithm, key id): what envelope batches call a key's prefix. */
export function envelopePrefix(algorithm: AlgorithmId, keyId: Uint8Array): Uint8Array {
  if (keyId.length !== KEY_ID_BYTES) throw new RangeError(`key id must be ${KEY_ID_BYTES} bytes`);
  const prefix = new Uint8Array(ENVELOPE_NONCE_AT);
  prefix[0] = ENVELOPE_VERSION;
  prefix[1] = algorithm;
  prefix.set(keyId, 2);
  return prefix;
}

/** The 22 header bytes; `nonce` must come from the CSPRNG. */
export function envelopeHeader(algorithm: AlgorithmId, keyId: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (nonce.length !== ENVELOPE_NONCE_BYTES) throw new RangeError(`nonce must be ${ENVELOPE_NONCE_BYTES} bytes`);
  const header = new Uint8Array(ENVELOPE_HEADER_BYTES);
  header.set(envelopePrefix(algorithm, keyId));
  header.set(nonce, ENVELOPE_NONCE_AT);
  return header;
}

/** Length of an envelope's associated data: the 22 header bytes, the subject and, for a field, 0x00 and its path. */
export function aadLength(subjectLength: number, fieldPath?: Uint8Array): number {
  return ENVELOPE_HEADER_BYTES + subjectLength + (fieldPath ? 1 + fieldPath.length : 0);
}

/**
 * Writes what follows the header in the associated data, subject [|| 0x00 || field path], into `aad`
 * from `at` (the header's length): in place, so a batch can lay every record's out in one arena.
 */
export function writeAadTail(aad: Uint8Array, subject: Uint8Array, fieldPath?: Uint8Array, at = ENVELOPE_HEADER_BYTES): void {
  for (let b = 0; b < subject.length; b++) aad[at + b] = subject[b]; // a byte loop: set() is slow for a few bytes
  if (!fieldPath) return;
  aad[at + subject.length] = 0x00;
  aad.set(fieldPath, at + subject.length + 1);
}

/** Associated data of a whole-value envelope: header || subject. */
export function envelopeAad(header: Uint8Array, subject: Uint8Array): Uint8Array {
  const aad = new Uint8Array(header.length + subject.length);
  aad.set(header, 0);
  writeAadTail(aad, subject, undefined, header.length);
  return aad;
}

/** Associated data of a field envelope: header || subject || 0x00 || field path (UTF-8). */
export function fieldAad(header: Uint8Array, subject: Uint8Array, path: string): Uint8Array {
  const pathBytes = Buffer.from(path, 'utf8');
  const aad = new Uint8Array(header.length + subject.length + 1 + pathBytes.length);
  aad.set(header, 0);
  writeAadTail(aad, subject, pathBytes, header.length);
  return aad;
}

/** Splits a v1 envelope into its fields (views, no copy); EnvelopeError says what is wrong. */
export function parseEnvelope(value: Uint8Array): Envelope {
  if (value.length < 2) throw new EnvelopeError(`not an encrypted value: ${value.length} bytes`);
  if (value[0] !== ENVELOPE_VERSION) {
    throw new EnvelopeError(`unknown envelope version 0x${value[0].toString(16).padStart(2, '0')}`);
  }
  let algorithm: AlgorithmId;
  try {
    algorithm = algorithmId(value[1]);
  } catch {
    throw new EnvelopeError(`unknown algorithm 0x${value[1].toString(16).padStart(2, '0')}`);
  }
  if (value.length < ENVELOPE_OVERHEAD) {
    throw new EnvelopeError(`truncated envelope: ${value.length} bytes, at least ${ENVELOPE_OVERHEAD} expected`);
  }
  return {
    algorithm,
    keyId: value.subarray(2, ENVELOPE_NONCE_AT),
    nonce: value.subarray(ENVELOPE_NONCE_AT, ENVELOPE_HEADER_BYTES),
    header: value.subarray(0, ENVELOPE_HEADER_BYTES),
    sealed: value.subarray(ENVELOPE_HEADER_BYTES),
  };
}
