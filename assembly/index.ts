// Exports of the WebAssembly crypto core (build/shredder-core.wasm).
// Every argument is a pointer into linear memory or a length; the host owns the layout (see batch.ts).

import { POLY1305_STATE, poly1305Mac } from './poly1305';

export { arenaBase, reserve, sealBatch, openBatch, DESC_SIZE } from './batch';
export { sealEnvelopes, openEnvelopes, KEY_ENTRY } from './envelopes';
export { stageSpanEnvelopes, SPAN_ITEM_WORDS, SUBJECT_AT } from './span-envelopes';
export { gcmTags, GHASH_ITEM } from './ghash';

// Primitives on their own, exported for the RFC 8439 test vectors of each.
export { chacha20Block, chacha20Xor } from './chacha20';

const POLY_TEST: usize = memory.data(POLY1305_STATE, 16);

/** Raw Poly1305 (RFC 8439 2.5) of len bytes at msg under the 32-byte key at key. */
export function poly1305(key: usize, msg: usize, len: usize, mac: usize): void {
  poly1305Mac(POLY_TEST, key, msg, len, mac);
}
