// Test hooks: the core's ChaCha20 and Poly1305 primitives on their own, for the RFC 8439 vectors of
// sections 2.4.2, 2.5.2 and appendix A. Not part of the public API (not re-exported by index.ts).

import { instantiateCore } from './wasm-module.js';

export interface CorePrimitives {
  /** Keystream block `counter` (64 bytes). */
  chacha20Block(key: Uint8Array, nonce: Uint8Array, counter: number): Uint8Array;
  /** data xor keystream from block `counter`. */
  chacha20(key: Uint8Array, nonce: Uint8Array, counter: number, data: Uint8Array): Uint8Array;
  /** Raw Poly1305 tag of msg under a 32-byte one-time key. */
  poly1305(key: Uint8Array, msg: Uint8Array): Uint8Array;
}

export async function loadCorePrimitives(): Promise<CorePrimitives> {
  const core = await instantiateCore();
  // Inputs at fixed arena offsets: key 0, nonce 32 (a key block), tag 64, data from 128.
  const place = (dataLength: number): { base: number; u8: Uint8Array } => {
    const base = core.reserve(128 + dataLength);
    if (base === 0) throw new RangeError('cannot grow memory');
    return { base, u8: new Uint8Array(core.memory.buffer) };
  };
  return {
    chacha20Block(key, nonce, counter) {
      const { base, u8 } = place(64);
      u8.set(key, base);
      u8.set(nonce, base + 32);
      core.chacha20Block(base, counter, base + 128);
      return u8.slice(base + 128, base + 192);
    },
    chacha20(key, nonce, counter, data) {
      const { base, u8 } = place(data.length);
      u8.set(key, base);
      u8.set(nonce, base + 32);
      u8.set(data, base + 128);
      core.chacha20Xor(base, counter, base + 128, base + 128, data.length);
      return u8.slice(base + 128, base + 128 + data.length);
    },
    poly1305(key, msg) {
      const { base, u8 } = place(msg.length);
      u8.set(key, base);
      u8.set(msg, base + 128);
      core.poly1305(base, base + 128, msg.length, base + 64);
      return u8.slice(base + 64, base + 80);
    },
  };
}
