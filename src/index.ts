// kafka-shredder as a library (package main). See docs/library.md.
// kafkajs gets snappy, lz4 and zstd codecs: the DecryptingConsumer reads Java producers' batches.
import './kafka/compression.js';
export {
  loadCryptoCore,
  aes256Gcm,
  randomNonces,
  sealWithFreshNonces,
  loadAeadRegistry,
  algorithmId,
  algorithmName,
  ALGORITHMS,
  CHACHA20_POLY1305,
  AES_256_GCM,
  KEY_BYTES,
  NONCE_BYTES,
  TAG_BYTES,
} from './crypto/index.js';
export type { CryptoCore, BatchAead, SealItem, OpenItem, AeadRegistry, AlgorithmId, AlgorithmName } from './crypto/index.js';
export { parseEnvelope, envelopeHeader, envelopeAad, fieldAad, EnvelopeError, ENVELOPE_OVERHEAD } from './wire/envelope.js';
export { parseWrappedKey, WrappedKeyError, WRAPPED_KEY_BYTES } from './wire/wrapped-key.js';
export { MasterKey, type DataKey } from './keys/master-key.js';
export { Keyring } from './keys/keyring.js';
export { LocalMasterKey } from './keys/local-master-key.js';
export { openPkcs11MasterKeys, type Pkcs11MasterKeyOptions } from './keys/pkcs11-master-keys.js';
export type { MasterKeyCipher, MasterKeySource } from './keys/master-key-cipher.js';
export { DecryptingConsumer } from './decryptor/decrypting-consumer.js';
export { KafkaConnectionError } from './kafka/connection-errors.js';
export { TopicLayoutError } from './kafka/topics.js';
export type { DecryptingConsumerOptions, DecryptingConsumerHandlers, DecryptedMessage, RecordStatus } from './decryptor/decrypting-consumer.js';
export type { SchemaRegistryConnection } from './schema-registry/client.js';
