// The schema registry of the integration run: started on the first call of a test that needs one (most
// tests do not, and it costs 5 s and 300 MB), stopped by the root afterAll hook (broker.hooks.ts), or
// the one SCHEMA_REGISTRY_URL names instead. Where no Java 21+ is found the test skips, saying why.
import { findJava, JavaNotFoundError, LocalSchemaRegistry, REGISTRY_JAVA_VERSION } from '../../src/dev/schema-registry/index.js';

let registry: LocalSchemaRegistry | undefined;
let starting: Promise<string> | undefined;

/** Why the local registry cannot run here (no Java 21+), or undefined when it can or one is given. */
async function registryMissing(): Promise<string | undefined> {
  if (process.env.SCHEMA_REGISTRY_URL) return undefined;
  try {
    await findJava(REGISTRY_JAVA_VERSION);
    return undefined;
  } catch (err) {
    if (err instanceof JavaNotFoundError) return `the local schema registry cannot run: ${err.message}`;
    throw err;
  }
}

/**
 * The base URL of a Confluent-compatible registry API (`.../apis/ccompat/v7` for the local one), for a
 * test (or hook) `context` that needs one; skips it, saying why, where none can run.
 */
export async function testSchemaRegistry(context: Mocha.Context): Promise<string> {
  if (process.env.SCHEMA_REGISTRY_URL) return process.env.SCHEMA_REGISTRY_URL;
  const missing = await registryMissing();
  if (missing !== undefined) {
    console.log(`      (skipped: ${missing})`);
    context.skip();
  }
  context.timeout(Math.max(context.timeout(), 300_000)); // the first run downloads it through Maven (160 MB)
  if (!starting) {
    registry = new LocalSchemaRegistry({ onProgress: (line) => console.log(`    [schema registry] ${line}`) });
    starting = registry.start();
    starting.catch(() => (starting = undefined)); // (a failed start is tried again by the next test)
  }
  return starting;
}

/** Stops the registry these helpers started, if they did (the root afterAll hook). */
export async function stopTestSchemaRegistry(): Promise<void> {
  const started = registry;
  registry = undefined;
  starting = undefined;
  await started?.stop();
}
