// Random 96-bit nonces, drawn from the CSPRNG once per batch instead of once per record
// (randomBytes(12) costs microseconds per call). Random nonces are safe here because every data key
// encrypts far fewer than 2^32 records (collision bound for 96-bit nonces).

import { randomFillSync } from 'node:crypto';

import { NONCE_BYTES } from './aead-items.js';

/** `count` fresh nonces of `size` bytes, as views of one freshly filled buffer (never reused). */
export function randomNonces(count: number, size: number = NONCE_BYTES): Uint8Array[] {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`size must be a positive integer, got ${size}`);
  const pool = randomFillSync(new Uint8Array(count * size));
  const nonces = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) nonces[i] = new Uint8Array(pool.buffer, i * size, size);
  return nonces;
}

/**
 * Nonces for the hot path: CSPRNG bytes drawn `refillBytes` at a time and each handed out once, so a
 * batch makes no CSPRNG call of its own (one call cost about as much as sealing a small batch).
 * Nonces are public, so bytes waiting in the pool need no more protection than the ones in use.
 */
export class NoncePool {
  private pool: Uint8Array;
  private next: number;

  constructor(private readonly refillBytes = 64 * 1024) {
    if (!Number.isSafeInteger(refillBytes) || refillBytes < NONCE_BYTES) throw new RangeError(`refillBytes must be an integer of at least ${NONCE_BYTES}`);
    this.pool = new Uint8Array(refillBytes);
    this.next = refillBytes; // empty: the first take fills it
  }

  /** Writes one fresh 12-byte nonce into `target` at `at`. */
  take(target: Uint8Array, at: number): void {
    if (!(at >= 0 && at + NONCE_BYTES <= target.length)) throw new RangeError(`a nonce at ${at} does not fit in ${target.length} bytes`);
    if (this.next + NONCE_BYTES > this.pool.length) {
      randomFillSync(this.pool); // every byte of it has been handed out: fill it anew
      this.next = 0;
    }
    const pool = this.pool;
    const from = this.next;
    for (let b = 0; b < NONCE_BYTES; b++) target[at + b] = pool[from + b]; // a byte loop: set() is slow for 12 bytes
    this.next = from + NONCE_BYTES;
  }

  /** Writes `bytes` fresh bytes (the nonces of a whole batch, back to back) into `target` at `at`. */
  fill(target: Uint8Array, at: number, bytes: number): void {
    if (!(at >= 0 && bytes >= 0 && at + bytes <= target.length)) throw new RangeError(`${bytes} nonce bytes at ${at} do not fit in ${target.length} bytes`);
    while (bytes > 0) {
      if (this.next === this.pool.length) {
        randomFillSync(this.pool);
        this.next = 0;
      }
      const n = Math.min(bytes, this.pool.length - this.next);
      target.set(this.pool.subarray(this.next, this.next + n), at);
      this.next += n;
      at += n;
      bytes -= n;
    }
  }
}
