// The easy path for sealing by hand: sealBatch (the contract's library API) takes the caller's nonces,
// which is what test vectors need, but one reused nonce under a key gives both plaintexts' XOR and
// the Poly1305 key away. sealWithFreshNonces draws every nonce itself from the CSPRNG and returns it
// beside its ciphertext, so no caller can reuse one.
import type { BatchAead } from './batch-aead.js';
import { randomNonces } from './nonces.js';

export interface FreshSealItem {
  key: Uint8Array;
  aad: Uint8Array;
  plaintext: Uint8Array;
}

export interface FreshlySealed {
  /** 12 random bytes, drawn for this item: store it beside the ciphertext (openBatch needs it). */
  nonce: Uint8Array;
  /** ciphertext || 16-byte tag */
  sealed: Uint8Array;
}

/** Seals every item under a nonce of its own from the host's CSPRNG, in one call to `aead`. */
export function sealWithFreshNonces(aead: BatchAead, items: readonly FreshSealItem[]): FreshlySealed[] {
  const nonces = randomNonces(items.length);
  const sealed = aead.sealBatch(items.map((item, i) => ({ key: item.key, aad: item.aad, plaintext: item.plaintext, nonce: nonces[i] })));
  return sealed.map((s, i) => ({ nonce: nonces[i], sealed: s }));
}
