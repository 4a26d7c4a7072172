// Algorithm agility: the algorithm byte of the wire format names the batch cipher that opens a record.
// Ids are part of the public contract: 0x01 ChaCha20-Poly1305 (RFC 8439), 0x02 AES-256-GCM. An id is
// never reused for another algorithm.

import { aes256Gcm } from './aes-256-gcm.js';
import type { BatchAead } from './batch-aead.js';
import { loadCryptoCore } from './crypto-core.js';

export type AlgorithmId = 1 | 2;
export type AlgorithmName = 'chacha20-poly1305' | 'aes-256-gcm';

export const CHACHA20_POLY1305: AlgorithmId = 1;
export const AES_256_GCM: AlgorithmId = 2;

const NAMES: Readonly<Record<AlgorithmId, AlgorithmName>> = {
  1: 'chacha20-poly1305',
  2: 'aes-256-gcm',
};

const IDS: Readonly<Record<AlgorithmName, AlgorithmId>> = {
  'chacha20-poly1305': 1,
  'aes-256-gcm': 2,
};

/** Every supported algorithm, by id. */
export const ALGORITHMS: readonly { id: AlgorithmId; name: AlgorithmName }[] = [
  { id: 1, name: 'chacha20-poly1305' },
  { id: 2, name: 'aes-256-gcm' },
];

/** The id for an id or a name; throws a RangeError naming the supported ones otherwise. */
export function algorithmId(idOrName: number | string): AlgorithmId {
  if (typeof idOrName === 'number' && Object.hasOwn(NAMES, idOrName)) return idOrName as AlgorithmId;
  if (typeof idOrName === 'string' && Object.hasOwn(IDS, idOrName)) return IDS[idOrName as AlgorithmName];
  const shown = typeof idOrName === 'number' ? `0x${idOrName.toString(16).padStart(2, '0')}` : JSON.stringify(idOrName);
  const known = ALGORITHMS.map(({ id, name }) => `0x0${id} ${name}`).join(', ');
  throw new RangeError(`unknown AEAD algorithm ${shown} (supported: ${known})`);
}

/** The name for an id or a name (same errors as algorithmId). */
export function algorithmName(idOrName: number | string): AlgorithmName {
  return NAMES[algorithmId(idOrName)];
}

/** Batch ciphers of every supported algorithm, looked up synchronously on the hot path. */
export interface AeadRegistry {
  /** The batch cipher for an id (the wire format's algorithm byte) or a name; RangeError if unknown. */
  get(idOrName: number | string): BatchAead;
}

/** Loads every algorithm's batch cipher (instantiates the wasm core once for this registry). */
export async function loadAeadRegistry(): Promise<AeadRegistry> {
  const ciphers: Record<AlgorithmId, BatchAead> = {
    1: await loadCryptoCore(),
    2: aes256Gcm,
  };
  return { get: (idOrName) => ciphers[algorithmId(idOrName)] };
}
