// Closing several things: each is closed whatever happened to the ones before it (a failed close must
// not leave a producer or a RocksDB lock behind), and the first failure is the one reported (compare
// Kafka Streams' StreamTask.close).

/** Runs every step in order, each whatever the others did; then rethrows the first failure, if any. */
export async function closeAll(steps: readonly (() => Promise<unknown> | unknown)[]): Promise<void> {
  let first: { error: unknown } | undefined;
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      first ??= { error };
    }
  }
  if (first) throw first.error;
}
