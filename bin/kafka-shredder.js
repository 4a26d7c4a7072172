#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/ (built by `npm install` in a checkout, via the
// prepare script; a packed tarball ships it built).
import { main } from '../dist/src/cli/main.js';

// A finished command exits even if a library left a handle open (the stop itself is bounded in main).
const exit = (code) => {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2000).unref();
};
main(process.argv.slice(2)).then(
  (code) => exit(code ?? 0),
  (err) => { console.error(err instanceof Error ? err.message : String(err)); exit(1); },
);
