// Wire format v1 of a keys-topic value (contract: "Wire format v1: a keys-topic value"): one subject's
// data key, wrapped with AES-256-GCM under the master key.
//
//   0  1  version 0x01
//   1  1  algorithm of the data key
//   2  8  key id
//  10  4  master key id (uint32, big-endian)
//  14 12  nonce
//  26 48  AES-256-GCM(data key) = 32 bytes ciphertext || 16 bytes tag
//
// Associated data = the 26 header bytes || subject id bytes: a wrapped key copied to another subject,
// or relabelled with another key id or algorithm, does not unwrap.
//
// Version 0x02, the pseudonymous value (SHREDDER_RECORD_KEYS=pseudonym; docs/wire-format.md), written
// under the record key `pseudonym` instead of the subject id, which it carries sealed:
//
//   0 74  as v1, with version 0x02 (the data key's associated data is still header || subject id)
//  74 16  pseudonym: the record key the value is written under, random per key generation
//  90 12  subject nonce
// 102 n+16 AES-256-GCM(subject id) under the subject key derived from the master key named at 10-13,
//          associated data = the first 90 bytes
import { RecordError } from '../errors/shredder-errors.js';
import { algorithmId, type AlgorithmId } from '../crypto/aead-algorithms.js';

export const WRAPPED_KEY_VERSION = 0x01;
export const WRAPPED_KEY_HEADER_BYTES = 26;
/** Where a value's wrapping nonce lies. */
export const WRAPPED_KEY_NONCE_AT = 14;
export const WRAPPED_KEY_NONCE_BYTES = 12;
export const WRAPPED_KEY_BYTES = 74;
export const DATA_KEY_BYTES = 32;
export const PSEUDONYMOUS_KEY_VERSION = 0x02;
export const PSEUDONYM_AT = 74;
export const PSEUDONYM_BYTES = 16;
export const SUBJECT_NONCE_AT = PSEUDONYM_AT + PSEUDONYM_BYTES;
export const SEALED_SUBJECT_AT = SUBJECT_NONCE_AT + 12;
/** A v2 value's bytes besides its sealed subject's ciphertext (the tag included). */
export const PSEUDONYMOUS_KEY_OVERHEAD = SEALED_SUBJECT_AT + 16;

export class WrappedKeyError extends RecordError {
  override readonly name: string = 'WrappedKeyError';
}

export interface WrappedKeyHeader {
  algorithm: AlgorithmId;
  keyId: Uint8Array;
  masterKeyId: number;
  nonce: Uint8Array;
}

export interface WrappedKey extends WrappedKeyHeader {
  header: Uint8Array;
  /** 32 bytes ciphertext || 16 bytes tag */
  sealed: Uint8Array;
  /** v2: the record key the value is written under. */
  pseudonym?: Uint8Array;
}

/** The 26 header bytes, in `into` (its first 26 bytes: a whole value's buffer, say) or in an array of their own; `version` 0x02 for a pseudonymous value. */
export function wrappedKeyHeader({ algorithm, keyId, masterKeyId, nonce }: WrappedKeyHeader, into?: Uint8Array, version = WRAPPED_KEY_VERSION): Uint8Array {
  if (keyId.length !== 8) throw new RangeError('key id must be 8 bytes');
  if (nonce.length !== WRAPPED_KEY_NONCE_BYTES) throw new RangeError(`nonce must be ${WRAPPED_KEY_NONCE_BYTES} bytes`);
  if (!Number.isInteger(masterKeyId) || masterKeyId < 0 || masterKeyId > 0xffffffff) {
    throw new RangeError('master key id must be a uint32');
  }
  if (into !== undefined && into.length < WRAPPED_KEY_HEADER_BYTES) throw new RangeError(`a header needs ${WRAPPED_KEY_HEADER_BYTES} bytes`);
  const header = into === undefined ? new Uint8Array(WRAPPED_KEY_HEADER_BYTES) : into.subarray(0, WRAPPED_KEY_HEADER_BYTES);
  header[0] = version;
  header[1] = algorithm;
  header.set(keyId, 2);
  header[10] = masterKeyId >>> 24;
  header[11] = (masterKeyId >>> 16) & 0xff;
  header[12] = (masterKeyId >>> 8) & 0xff;
  header[13] = masterKeyId & 0xff;
  header.set(nonce, WRAPPED_KEY_NONCE_AT);
  return header;
}

/** Why a keys-topic value cannot be read by this build, judged by its bytes alone (no master key needed). */
export interface WrappedKeyProblem {
  /** `version`: a format this build does not know (a newer one: kept byte for byte, never overwritten); `length`, `algorithm`: a malformed v1 value. */
  kind: 'length' | 'version' | 'algorithm';
  /** The reason, naming what is wrong, never the value's bytes beyond its version and algorithm. */
  reason: string;
}

const hex = (byte: number) => `0x${byte.toString(16).padStart(2, '0')}`;

/**
 * What makes a keys-topic value unreadable by its structure, or undefined for a well-formed v1 or v2
 * value (whose authenticity only unwrapping can tell). The version is judged first: a later format may
 * have any length, and must be reported as unknown, not as a value of the wrong size.
 */
export function wrappedKeyProblem(value: Uint8Array): WrappedKeyProblem | undefined {
  if (value.length === 0) return { kind: 'length', reason: `wrapped key must be ${WRAPPED_KEY_BYTES} bytes, got 0` };
  if (value[0] === PSEUDONYMOUS_KEY_VERSION) {
    if (value.length <= PSEUDONYMOUS_KEY_OVERHEAD) return { kind: 'length', reason: `a pseudonymous wrapped key must be more than ${PSEUDONYMOUS_KEY_OVERHEAD} bytes, got ${value.length}` };
  } else if (value[0] !== WRAPPED_KEY_VERSION) {
    return { kind: 'version', reason: `unknown wrapped key version ${hex(value[0])}` };
  } else if (value.length !== WRAPPED_KEY_BYTES) {
    return { kind: 'length', reason: `wrapped key must be ${WRAPPED_KEY_BYTES} bytes, got ${value.length}` };
  }
  try {
    algorithmId(value[1]);
  } catch {
    return { kind: 'algorithm', reason: `unknown data key algorithm ${hex(value[1])}` };
  }
  return undefined;
}

/** The master key id of a keys-topic value, or undefined when it is not a v1 or v2 value (tools that count or scan values leave those alone). */
export function wrappedMasterKeyId(value: Uint8Array): number | undefined {
  if (wrappedKeyProblem(value)) return undefined;
  return new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(10, false);
}

export function parseWrappedKey(value: Uint8Array): WrappedKey {
  const problem = wrappedKeyProblem(value);
  if (problem) throw new WrappedKeyError(problem.reason);
  return {
    algorithm: algorithmId(value[1]),
    keyId: value.subarray(2, 10),
    masterKeyId: new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(10, false),
    nonce: value.subarray(WRAPPED_KEY_NONCE_AT, WRAPPED_KEY_HEADER_BYTES),
    header: value.subarray(0, WRAPPED_KEY_HEADER_BYTES),
    sealed: value.subarray(WRAPPED_KEY_HEADER_BYTES, WRAPPED_KEY_BYTES),
    pseudonym: value[0] === PSEUDONYMOUS_KEY_VERSION ? value.subarray(PSEUDONYM_AT, SUBJECT_NONCE_AT) : undefined,
  };
}

/** The pseudonym of a well-formed v2 value (the record key it belongs under), else undefined. */
export function pseudonymOf(value: Uint8Array): Uint8Array | undefined {
  return value[0] === PSEUDONYMOUS_KEY_VERSION && !wrappedKeyProblem(value) ? value.subarray(PSEUDONYM_AT, SUBJECT_NONCE_AT) : undefined;
}
