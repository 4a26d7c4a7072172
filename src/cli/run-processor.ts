// Runs a processor command until SIGTERM/SIGINT, mapping failures to the contract's exit codes.
import { ConfigError, loadConfig, type ShredderConfig } from '../config/config.js';
import type { CommandName } from '../config/variables.js';
import { TopicLayoutError } from '../kafka/topics.js';
import { createLogger, type Logger } from '../observability/logger.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface Runnable {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Rejects when the processor fails for good. */
  readonly failed?: Promise<never>;
}

/** Loads configuration, printing every problem to stderr; undefined means exit 2. */
export function configOrReport(command: CommandName): ShredderConfig | undefined {
  try {
    return loadConfig(command);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`kafka-shredder ${command}: ${err.message}\n`);
      return undefined;
    }
    throw err;
  }
}

export async function runUntilSignal(command: CommandName, create: (config: ShredderConfig, logger: Logger) => Runnable): Promise<number> {
  const config = configOrReport(command);
  if (!config) return EXIT_USAGE;
  const logger = createLogger(config.logLevel);
  const processor = create(config, logger);
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  try {
    await processor.start();
  } catch (err) {
    logger.error({ error: (err as Error).message }, `${command} failed to start`);
    await processor.stop().catch(() => {});
    return err instanceof TopicLayoutError ? EXIT_USAGE : EXIT_FAILURE;
  }
  const outcome = await Promise.race([
    signalled.then((signal) => ({ signal })),
    (processor.failed ?? new Promise<never>(() => {})).catch((err: Error) => ({ error: err })),
  ]);
  if ('error' in outcome) {
    logger.error({ error: outcome.error.message }, `${command} failed`);
    await processor.stop().catch(() => {});
    return EXIT_FAILURE;
  }
  logger.info({ signal: outcome.signal }, `${command} stopping`);
  await processor.stop();
  return EXIT_OK;
}
