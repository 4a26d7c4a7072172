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
import { RecordError } from '../errors/shredder-errors.js';
import { algorithmId, type AlgorithmId } from '../crypto/aead-algorithms.js';

export const WRAPPED_KEY_VERSION = 0x01;
export const WRAPPED_KEY_HEADER_BYTES = 26;
export const WRAPPED_KEY_BYTES = 74;
export const DATA_KEY_BYTES = 32;

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
}

export function wrappedKeyHeader({ algorithm, keyId, masterKeyId, nonce }: WrappedKeyHeader): Uint8Array {
  if (keyId.length !== 8) throw new RangeError('key id must be 8 bytes');
  if (nonce.length !== 12) throw new RangeError('nonce must be 12 bytes');
  if (!Number.isInteger(masterKeyId) || masterKeyId < 0 || masterKeyId > 0xffffffff) {
    throw new RangeError('master key id must be a uint32');
  }
  const header = new Uint8Array(WRAPPED_KEY_HEADER_BYTES);
  header[0] = WRAPPED_KEY_VERSION;
  header[1] = algorithm;
  header.set(keyId, 2);
  new DataView(header.buffer).setUint32(10, masterKeyId, false);
  header.set(nonce, 14);
  return header;
}

/** The master key id of a keys-topic value, or undefined when it is not a v1 value (tools that count or scan values leave those alone). */
export function wrappedMasterKeyId(value: Uint8Array): number | undefined {
  try {
    return parseWrappedKey(value).masterKeyId;
  } catch (err) {
    if (err instanceof WrappedKeyError) return undefined;
    throw err;
  }
}

export function parseWrappedKey(value: Uint8Array): WrappedKey {
  if (value.length !== WRAPPED_KEY_BYTES) {
    throw new WrappedKeyError(`wrapped key must be ${WRAPPED_KEY_BYTES} bytes, got ${value.length}`);
  }
  if (value[0] !== WRAPPED_KEY_VERSION) {
    throw new WrappedKeyError(`unknown wrapped key version 0x${value[0].toString(16).padStart(2, '0')}`);
  }
  let algorithm: AlgorithmId;
  try {
    algorithm = algorithmId(value[1]);
  } catch {
    throw new WrappedKeyError(`unknown data key algorithm 0x${value[1].toString(16).padStart(2, '0')}`);
  }
  return {
    algorithm,
    keyId: value.subarray(2, 10),
    masterKeyId: new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(10, false),
    nonce: value.subarray(14, 26),
    header: value.subarray(0, WRAPPED_KEY_HEADER_BYTES),
    sealed: value.subarray(WRAPPED_KEY_HEADER_BYTES),
  };
}
