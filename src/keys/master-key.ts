// A single local master key as a keyring of one: the library's way to read a keys-topic value by hand
// (`new MasterKey(bytes, id).unwrap(subject, value)`, docs/library.md), and the form every processor
// took before keyrings. Everything it does is Keyring's.
import { Keyring } from './keyring.js';
import { LocalMasterKey } from './local-master-key.js';

export type { DataKey } from './keyring.js';

export class MasterKey extends Keyring {
  constructor(key: Uint8Array, id: number) {
    const cipher = new LocalMasterKey(key, id); // (validates the key's size and the id)
    super([cipher], id);
  }

  /** The master key id, written beside every wrapped key. */
  get id(): number {
    return this.currentId;
  }
}
