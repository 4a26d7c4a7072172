// Opens the keyring a processor's configuration names (SHREDDER_KEY_PROVIDER): local keys, or the
// master keys of a PKCS#11 token. Another key-management system plugs in as one more MasterKeySource
// (docs/operations.md, "Key management").
import type { KeyProviderConfig } from '../config/key-provider-config.js';
import { Keyring } from './keyring.js';
import { LocalMasterKey } from './local-master-key.js';
import type { MasterKeySource } from './master-key-cipher.js';
import { openPkcs11MasterKeys } from './pkcs11-master-keys.js';

export interface OpenKeyring {
  keyring: Keyring;
  /** Releases what the provider holds (an HSM session); the keyring is unusable afterwards. */
  close(): Promise<void>;
}

/** `warn`: told about master keys weaker than generated in the token (see pkcs11-master-keys.ts). */
export function openKeyring(config: KeyProviderConfig, warn?: (message: string) => void): OpenKeyring {
  const source: MasterKeySource =
    config.provider === 'pkcs11'
      ? openPkcs11MasterKeys({ modulePath: config.modulePath, tokenLabel: config.tokenLabel, slot: config.slot, pin: config.pin, keyLabelPrefix: config.keyLabelPrefix, warn })
      : { ciphers: config.masterKeys.map(({ id, key }) => new LocalMasterKey(key, id)), close: () => Promise.resolve() };
  try {
    return { keyring: new Keyring(source.ciphers, config.currentId), close: () => source.close() };
  } catch (err) {
    void source.close().catch(() => undefined); // (the keyring's error is the one to report)
    throw err;
  }
}
