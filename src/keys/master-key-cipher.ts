// The key-encryption seam: what a master key does, wherever it lives. A provider (a local key in this
// process, a key inside an HSM through PKCS#11, ...) only runs AES-256-GCM under one master key; the
// keyring (keyring.ts) owns the keys-topic value's layout, nonces and associated data, so the value
// stays byte-identical whichever provider wrapped it (contract: "Wire format v1: a keys-topic value").
// Calls are synchronous: a new subject's key is wrapped inside the batch that needs it.
import type { GcmSealItem } from '../crypto/aes-gcm-batch.js';

/** AES-256-GCM under one master key: 32-byte data keys in, 32 bytes ciphertext || 16 bytes tag out. */
export interface MasterKeyCipher {
  /** The uint32 master key id written at bytes 10-13 of every value it wraps. */
  readonly id: number;
  /** Where the key lives, for logs and `keys status`: `local`, `pkcs11`, ... */
  readonly provider: string;
  /**
   * AES-256-GCM(key, nonce (12 bytes), aad) of `dataKey` (32 bytes): 48 bytes, ciphertext || tag. The
   * arguments are only borrowed for the call (the keyring reuses their buffers): a provider copies what it keeps.
   */
  seal(nonce: Uint8Array, aad: Uint8Array, dataKey: Uint8Array): Uint8Array;
  /**
   * Optional: seal() of each item in one pass, the same bytes; a batch of new subjects' keys is wrapped
   * with it when the provider has it (the local key: crypto/aes-gcm-batch.ts), else key by key.
   */
  sealAll?(items: readonly GcmSealItem[]): Uint8Array[];
  /** The 32-byte data key; throws when the tag does not verify (another key, subject or header, or forged). */
  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array;
}

/** A provider's master keys, opened from its configuration; close() releases what it holds (an HSM session). */
export interface MasterKeySource {
  readonly ciphers: readonly MasterKeyCipher[];
  close(): Promise<void>;
}
