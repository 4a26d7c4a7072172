// The package's version, for `--version` and the shredder_build_info metric.
import { readFileSync } from 'node:fs';

/** (read from package.json beside dist/, where the compiled module lives: dist/src/version.js) */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
