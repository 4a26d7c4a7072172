// The items and sizes every AEAD of the core takes (32-byte keys, 12-byte nonces, 16-byte tags), in a
// file of their own that imports nothing: the wire format, the nonce pool and the ciphers all use them,
// and none of those needs the envelope batches to know them.

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/** One record to encrypt. `prefix` (not encrypted, not authenticated by itself) is copied before the result. */
export interface SealItem {
  key: Uint8Array;
  nonce: Uint8Array;
  aad: Uint8Array;
  plaintext: Uint8Array;
  prefix?: Uint8Array;
}

/** One record to decrypt: `sealed` = ciphertext || 16-byte tag. */
export interface OpenItem {
  key: Uint8Array;
  nonce: Uint8Array;
  aad: Uint8Array;
  sealed: Uint8Array;
}
