// Random bytes for new data keys, their key ids and the nonces that wrap them, drawn from the CSPRNG a
// few KiB at a time and each handed out once: a randomBytes call costs far more than the bytes it
// returns, and creating a key took two, a large share of the main thread's cost of a new subject,
// which a backlog's first batches pay once per subject. Bytes handed out are zeroed in the pool, so it never keeps a copy of a key.
import { randomFillSync } from 'node:crypto';

export class KeyMaterialPool {
  private readonly pool: Uint8Array;
  private next: number;

  constructor(refillBytes = 4096) {
    if (!Number.isSafeInteger(refillBytes) || refillBytes <= 0) throw new RangeError(`refillBytes must be a positive integer, got ${refillBytes}`);
    this.pool = new Uint8Array(refillBytes);
    this.next = refillBytes; // empty: the first take fills it
  }

  /** `bytes` fresh bytes from the CSPRNG, in an array of their own. */
  take(bytes: number): Uint8Array {
    const taken = new Uint8Array(bytes);
    this.takeInto(taken, 0, bytes);
    return taken;
  }

  /** `bytes` fresh bytes from the CSPRNG, written into `target` at `at` (a nonce into the value it belongs to). */
  takeInto(target: Uint8Array, at: number, bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > this.pool.length) throw new RangeError(`cannot take ${bytes} bytes from a pool of ${this.pool.length}`);
    if (!Number.isSafeInteger(at) || at < 0 || at + bytes > target.length) throw new RangeError(`${bytes} bytes do not fit at ${at} in ${target.length}`);
    if (this.next + bytes > this.pool.length) {
      randomFillSync(this.pool); // (the bytes left unused are overwritten: none of them was handed out)
      this.next = 0;
    }
    const from = this.next;
    this.next = from + bytes;
    target.set(this.pool.subarray(from, from + bytes), at);
    this.pool.fill(0, from, from + bytes);
  }
}
