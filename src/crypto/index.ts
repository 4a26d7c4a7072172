// Public crypto API of kafka-shredder.
export type { BatchAead } from './batch-aead.js';
export { KEY_BYTES, NONCE_BYTES, TAG_BYTES, type OpenItem, type SealItem } from './aead-items.js';
export type { CryptoCore } from './crypto-core.js';
export { loadCryptoCore } from './crypto-core.js';
export { aes256Gcm } from './aes-256-gcm.js';
export { NoncePool, randomNonces } from './nonces.js';
export { sealWithFreshNonces, type FreshSealItem, type FreshlySealed } from './fresh-nonces.js';
export type { AeadRegistry, AlgorithmId, AlgorithmName } from './aead-algorithms.js';
export {
  AES_256_GCM,
  ALGORITHMS,
  CHACHA20_POLY1305,
  algorithmId,
  algorithmName,
  loadAeadRegistry,
} from './aead-algorithms.js';
