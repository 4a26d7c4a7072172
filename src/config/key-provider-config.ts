// Where the master keys come from (SHREDDER_KEY_PROVIDER): `local`, keys held by the process (one key,
// SHREDDER_MASTER_KEY or its file; or a keyring, SHREDDER_MASTER_KEYS or its file), or `pkcs11`, keys
// inside an HSM token. SHREDDER_MASTER_KEY_ID names the one that wraps new keys either way.

export interface LocalKeys {
  provider: 'local';
  masterKeys: { id: number; key: Uint8Array }[];
  currentId: number;
}

export interface Pkcs11Keys {
  provider: 'pkcs11';
  modulePath: string;
  tokenLabel?: string;
  slot?: number;
  pin: string;
  keyLabelPrefix: string;
  currentId: number;
}

export type KeyProviderConfig = LocalKeys | Pkcs11Keys;

/** What config.ts lends the parser: variables (trimmed, undefined when unset), files, and the problem list. */
export interface VariableReader {
  raw(name: string): string | undefined;
  value(name: string): string;
  integer(name: string, min: number, max: number): number;
  readFile(name: string, path: string): Buffer | undefined;
  problems: string[];
}

const MASTER_KEY_VARIABLES = ['SHREDDER_MASTER_KEY', 'SHREDDER_MASTER_KEY_FILE', 'SHREDDER_MASTER_KEYS', 'SHREDDER_MASTER_KEYS_FILE'];
const PKCS11_VARIABLES = ['SHREDDER_PKCS11_MODULE', 'SHREDDER_PKCS11_TOKEN_LABEL', 'SHREDDER_PKCS11_SLOT', 'SHREDDER_PKCS11_PIN', 'SHREDDER_PKCS11_PIN_FILE', 'SHREDDER_PKCS11_KEY_LABEL'];

/** 32 bytes from base64, or a problem naming `name` (never the value: it is the secret). */
export function keyBytes(name: string, base64: string, problems: string[]): Uint8Array | undefined {
  const decoded = /^[A-Za-z0-9+/]*={0,2}$/.test(base64) ? Buffer.from(base64, 'base64') : undefined;
  if (!decoded || decoded.length !== 32) {
    problems.push(`${name}: expected 32 bytes in base64 (44 characters)`);
    return undefined;
  }
  return new Uint8Array(decoded);
}

/** `id:base64` entries, comma- or line-separated (a file may have # comments and blank lines). */
function keyringEntries(name: string, text: string, problems: string[]): { id: number; key: Uint8Array }[] {
  const entries: { id: number; key: Uint8Array }[] = [];
  const items = text.split(/[\n,]/).map((line) => line.replace(/#.*$/, '').trim()).filter(Boolean);
  items.forEach((item, index) => {
    const match = /^(\d{1,10})\s*:\s*(\S+)$/.exec(item);
    const id = match ? Number(match[1]) : NaN;
    if (!match || id > 0xffffffff) {
      problems.push(`${name}: entry ${index + 1} is not id:base64 (a uint32 id, a colon, the key in base64)`);
      return;
    }
    if (entries.some((e) => e.id === id)) problems.push(`${name}: master key id ${id} appears twice`);
    const key = keyBytes(`${name}: master key id ${id}`, match[2], problems);
    if (key) entries.push({ id, key });
  });
  if (items.length === 0) problems.push(`${name}: holds no id:base64 entry`);
  return entries;
}

/** One of a value variable and its _FILE form: the value, the file's text, or undefined. */
export function valueOrFile(reader: VariableReader, name: string, trim: (text: string) => string = (t) => t.trim()): string | undefined {
  const text = reader.raw(name);
  const file = reader.raw(`${name}_FILE`);
  if (text !== undefined && file !== undefined) {
    reader.problems.push(`${name}, ${name}_FILE: set one of them, not both`);
    return undefined;
  }
  if (file !== undefined) {
    const contents = reader.readFile(`${name}_FILE`, file);
    return contents === undefined ? undefined : trim(contents.toString('utf8'));
  }
  return text;
}

export function parseKeyProvider(reader: VariableReader, needed: boolean): KeyProviderConfig {
  const { problems } = reader;
  const provider = reader.value('SHREDDER_KEY_PROVIDER').toLowerCase();
  const currentId = reader.integer('SHREDDER_MASTER_KEY_ID', 0, 0xffffffff);
  if (provider === 'pkcs11') {
    for (const name of MASTER_KEY_VARIABLES) {
      if (reader.raw(name) !== undefined) problems.push(`${name}: not used with SHREDDER_KEY_PROVIDER=pkcs11 (the master keys are in the HSM): unset it`);
    }
    const modulePath = reader.raw('SHREDDER_PKCS11_MODULE') ?? '';
    if (needed && !modulePath) problems.push('SHREDDER_PKCS11_MODULE: required with SHREDDER_KEY_PROVIDER=pkcs11, the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so)');
    const tokenLabel = reader.raw('SHREDDER_PKCS11_TOKEN_LABEL');
    const slotText = reader.raw('SHREDDER_PKCS11_SLOT');
    const slot = slotText === undefined ? undefined : reader.integer('SHREDDER_PKCS11_SLOT', 0, 0xffffffff);
    if (tokenLabel !== undefined && slot !== undefined) problems.push('SHREDDER_PKCS11_TOKEN_LABEL, SHREDDER_PKCS11_SLOT: set one of them, not both');
    if (needed && tokenLabel === undefined && slot === undefined) problems.push('SHREDDER_PKCS11_TOKEN_LABEL or SHREDDER_PKCS11_SLOT: required with SHREDDER_KEY_PROVIDER=pkcs11');
    // (a PIN file's trailing newline is not part of the PIN)
    const pin = valueOrFile(reader, 'SHREDDER_PKCS11_PIN', (t) => t.replace(/\r?\n$/, ''));
    if (needed && !pin && !problems.some((p) => p.startsWith('SHREDDER_PKCS11_PIN'))) problems.push('SHREDDER_PKCS11_PIN or SHREDDER_PKCS11_PIN_FILE: required with SHREDDER_KEY_PROVIDER=pkcs11, the token user\'s PIN');
    return { provider: 'pkcs11', modulePath, tokenLabel, slot, pin: pin ?? '', keyLabelPrefix: reader.value('SHREDDER_PKCS11_KEY_LABEL'), currentId };
  }
  if (provider !== 'local') problems.push(`SHREDDER_KEY_PROVIDER: expected local or pkcs11, got ${JSON.stringify(provider)}`);
  for (const name of PKCS11_VARIABLES) {
    if (reader.raw(name) !== undefined) problems.push(`${name}: used only with SHREDDER_KEY_PROVIDER=pkcs11`);
  }
  const single = valueOrFile(reader, 'SHREDDER_MASTER_KEY');
  const ring = valueOrFile(reader, 'SHREDDER_MASTER_KEYS');
  const masterKeys: { id: number; key: Uint8Array }[] = [];
  if (single !== undefined && ring !== undefined) {
    problems.push('SHREDDER_MASTER_KEY, SHREDDER_MASTER_KEYS: set one of them, not both (a keyring holds every key, SHREDDER_MASTER_KEY_ID names the current one)');
  } else if (single !== undefined) {
    const name = reader.raw('SHREDDER_MASTER_KEY_FILE') !== undefined ? 'SHREDDER_MASTER_KEY_FILE' : 'SHREDDER_MASTER_KEY';
    const key = keyBytes(name, single, problems);
    if (key) masterKeys.push({ id: currentId, key });
  } else if (ring !== undefined) {
    const name = reader.raw('SHREDDER_MASTER_KEYS_FILE') !== undefined ? 'SHREDDER_MASTER_KEYS_FILE' : 'SHREDDER_MASTER_KEYS';
    masterKeys.push(...keyringEntries(name, ring, problems));
    if (masterKeys.length > 0 && !masterKeys.some((k) => k.id === currentId) && !problems.some((p) => p.startsWith(name))) {
      problems.push(`SHREDDER_MASTER_KEY_ID: master key id ${currentId} is not in ${name} (ids ${masterKeys.map((k) => k.id).join(', ')}); it names the key that wraps new keys`);
    }
  } else if (needed && !problems.some((p) => p.startsWith('SHREDDER_MASTER_KEY'))) {
    problems.push('SHREDDER_MASTER_KEY or SHREDDER_MASTER_KEY_FILE (or a keyring: SHREDDER_MASTER_KEYS or SHREDDER_MASTER_KEYS_FILE): required, 32 bytes in base64');
  }
  return { provider: 'local', masterKeys, currentId };
}
