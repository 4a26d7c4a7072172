// Finds, compiles (once per process) and instantiates build/shredder-core.wasm with the
// AssemblyScript loader. Each instance has its own linear memory.

import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { instantiate, instantiateSync } from '@assemblyscript/loader';

// tsconfig's lib (ES2022, no DOM) has no WebAssembly types: declare the little this file uses.
type WasmModule = Parameters<typeof instantiate>[0];
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule>; Module: new (bytes: Uint8Array) => WasmModule };

/** Raw exports of the core; pointers and lengths are byte offsets into `memory`. See assembly/. */
export interface CoreExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  readonly DESC_SIZE: { readonly value: number };
  arenaBase(): number;
  reserve(bytes: number): number;
  sealBatch(desc: number, count: number): number;
  openBatch(desc: number, count: number): number;
  readonly KEY_ENTRY: { readonly value: number };
  /** See assembly/envelopes.ts. */
  sealEnvelopes(desc: number, count: number, keys: number, nonces: number, prefixBytes: number): number;
  openEnvelopes(desc: number, count: number, keys: number, prefixBytes: number): number;
  readonly SPAN_ITEM_WORDS: { readonly value: number };
  readonly SUBJECT_AT: { readonly value: number };
  /** See assembly/span-envelopes.ts. */
  stageSpanEnvelopes(
    items: number, count: number, keys: number, keyCount: number, subjects: number, subjectBytes: number,
    span: number, origin: number, spanBytes: number, desc: number, aad: number, out: number, headerBytes: number,
  ): number;
  readonly GHASH_ITEM: { readonly value: number };
  /** See assembly/ghash.ts. */
  gcmTags(h: number, items: number, count: number): void;
  /** kn: a key block, the 32-byte key followed by the 12-byte nonce. */
  chacha20Block(kn: number, counter: number, out: number): void;
  chacha20Xor(kn: number, counter: number, src: number, dst: number, len: number): void;
  poly1305(key: number, msg: number, len: number, mac: number): void;
}

const WASM_FILE = join('build', 'shredder-core.wasm');

/**
 * The package root: the nearest folder above this file holding package.json. Compiled code runs from
 * dist/src/crypto, sources from src/crypto, so a fixed relative path would break one of them.
 */
export function packageRoot(from: string | URL = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(from)}`);
    dir = parent;
  }
}

let compiled: Promise<WasmModule> | undefined;

/** Why the core at `path` could not be read, and how to build it. */
function unreadableCore(path: string, err: unknown): Error {
  return new Error(`cannot read the crypto core ${path} (run \`npm run build:wasm\`): ${(err as Error).message}`, { cause: err });
}

function compileCore(): Promise<WasmModule> {
  compiled ??= (async () => {
    const path = join(packageRoot(), WASM_FILE);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw unreadableCore(path, err);
    }
    return WebAssembly.compile(bytes);
  })();
  // A failed compile should not stick: the next call retries.
  compiled.catch(() => { compiled = undefined; });
  return compiled;
}

let compiledSync: WasmModule | undefined;

/**
 * A fresh instance of the core (its own memory), made synchronously: for a user that is built
 * synchronously and needs the core only now and then (the local master key's batch wraps).
 */
export function instantiateCoreSync(): CoreExports {
  if (compiledSync === undefined) {
    const path = join(packageRoot(), WASM_FILE);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw unreadableCore(path, err);
    }
    compiledSync = new WebAssembly.Module(bytes);
  }
  const { exports } = instantiateSync<Record<string, unknown>>(compiledSync);
  return exports as unknown as CoreExports;
}

/** A fresh instance of the core (its own memory). */
export async function instantiateCore(): Promise<CoreExports> {
  // The module imports nothing (no runtime, no asserts); the loader supplies its default env anyway.
  const { exports } = await instantiate<Record<string, unknown>>(await compileCore());
  return exports as unknown as CoreExports;
}
