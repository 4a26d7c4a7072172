// The layout of the WebAssembly core's arena that the host and the module (assembly/) must agree on,
// in one place, and checked against the module's exported constants when it loads: a build of the
// module that disagrees (a stale build/shredder-core.wasm) is refused instead of misread.

/** Bytes of a batch item's descriptor (assembly/batch.ts). */
export const DESC_SIZE = 64;
/** Bytes of a key table entry: the 32-byte key, then its prefix (at most 32 bytes). */
export const KEY_ENTRY = 64;
/** Words per item of a span run (see span-envelopes.ts). */
export const SPAN_ITEM_WORDS = 3;
/** Where in a key table entry a span run puts its subject's offset and length (see span-envelopes.ts). */
export const SUBJECT_AT = 56;

/** The module's exported layout constants (globals). */
export interface ArenaLayoutExports {
  DESC_SIZE: { value: unknown };
  KEY_ENTRY?: { value: unknown };
  SPAN_ITEM_WORDS?: { value: unknown };
  SUBJECT_AT?: { value: unknown };
}

/** Throws unless the module lays out its arena as the host does. */
export function checkArenaLayout(module: ArenaLayoutExports): void {
  const expected: [keyof ArenaLayoutExports, number][] = [['DESC_SIZE', DESC_SIZE], ['KEY_ENTRY', KEY_ENTRY], ['SPAN_ITEM_WORDS', SPAN_ITEM_WORDS], ['SUBJECT_AT', SUBJECT_AT]];
  for (const [name, value] of expected) {
    const actual = module[name]?.value as number | undefined;
    if (actual !== value) throw new Error(`crypto core ${name} is ${actual}, the host expects ${value}: stale build/shredder-core.wasm (npm run build)`);
  }
}
