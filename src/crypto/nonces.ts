// Random 96-bit nonces, drawn from the CSPRNG once per batch instead of once per record
// (randomBytes(12) costs microseconds per call). Random nonces are safe here because every data key
// encrypts far fewer than 2^32 records (collision bound for 96-bit nonces).

import { randomFillSync } from 'node:crypto';

import { NONCE_BYTES } from './batch-aead.js';

/** `count` fresh nonces of `size` bytes, as views of one freshly filled buffer (never reused). */
export function randomNonces(count: number, size: number = NONCE_BYTES): Uint8Array[] {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`size must be a positive integer, got ${size}`);
  const pool = randomFillSync(new Uint8Array(count * size));
  const nonces = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) nonces[i] = new Uint8Array(pool.buffer, i * size, size);
  return nonces;
}
