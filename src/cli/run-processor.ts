// Runs a processor command until SIGTERM/SIGINT, mapping failures to the contract's exit codes.
import { ConfigError, loadConfig, type ShredderConfig } from '../config/config.js';
import type { CommandName } from '../config/variables.js';
import { explainConnectionError } from '../kafka/connection-errors.js';
import { TopicLayoutError } from '../kafka/topics.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeFor, messageOf } from '../errors/shredder-errors.js';
import { startHttpServer, type HttpEndpoints, type Observable } from '../observability/http-server.js';
import { createLogger, type Logger } from '../observability/logger.js';

export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../errors/shredder-errors.js';

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

/** How long a stop may take (finish or abort the open transactions, leave the group, close RocksDB). */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

function within<T>(ms: number, work: Promise<T>): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export async function runUntilSignal(command: CommandName, create: (config: ShredderConfig, logger: Logger) => Runnable): Promise<number> {
  const config = configOrReport(command);
  if (!config) return EXIT_USAGE;
  const logger = createLogger(config.logLevel);
  exitOnStrayErrors(command, logger);
  let processor: Runnable;
  try {
    processor = create(config, logger); // (opens the master keys: an HSM may refuse)
  } catch (err) {
    logger.error({ error: messageOf(err) }, `${command} failed to start`);
    return exitCodeFor(err);
  }
  let signals = 0;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals === 1) return resolve(signal);
      // a second signal while stopping: the operator does not want to wait
      logger.error({ signal }, `${command}: second signal, exiting without a clean stop`);
      process.exit(EXIT_FAILURE);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  let http: HttpEndpoints | undefined;
  const stop = async (): Promise<boolean> => {
    const stopped = await within(SHUTDOWN_TIMEOUT_MS, processor.stop().then(() => 'stopped' as const));
    await http?.close();
    if (stopped === 'timeout') logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, `${command} did not stop in time`);
    return stopped === 'stopped';
  };
  try {
    if (config.httpPort !== 0 && isObservable(processor)) http = await startHttpServer(config.httpPort, processor, logger);
    // (a start may wait for a master-key provider that is down: a signal meanwhile stops it)
    const starting = processor.start().then(() => undefined, (error: unknown) => ({ error }));
    const early = await Promise.race([starting, signalled.then((signal) => ({ signal }))]);
    if (early && 'error' in early) throw early.error;
    if (early && 'signal' in early) {
      logger.info({ signal: early.signal }, `${command} stopping before it started`);
      const stopped = await stop();
      await starting;
      return stopped ? EXIT_OK : EXIT_FAILURE;
    }
  } catch (err) {
    // a connection error is told as one line naming the variable to check (connection-errors.ts)
    const problem = explainConnectionError(err, config.kafka);
    // (a layout's problems are listed one by one too, for whoever reads the logs by machine)
    const problems = err instanceof TopicLayoutError ? { problems: err.problems } : {};
    logger.error(problem ? { error: problem.message, settings: problem.settings } : { error: messageOf(err), ...problems }, `${command} failed to start`);
    await stop().catch((stopError: unknown) => logger.warn({ error: messageOf(stopError) }, `${command}: stopping after the failed start failed too`));
    return exitCodeFor(err);
  }
  const outcome = await Promise.race([
    signalled.then((signal) => ({ signal })),
    (processor.failed ?? new Promise<never>(() => undefined)).catch((err: Error) => ({ error: err })), // (no failed: only a signal ends it)
  ]);
  if ('error' in outcome) {
    logger.error({ error: outcome.error.message }, `${command} failed`);
    await stop().catch((stopError: unknown) => logger.warn({ error: messageOf(stopError) }, `${command}: stopping after the failure failed too`));
    return exitCodeFor(outcome.error);
  }
  logger.info({ signal: outcome.signal }, `${command} stopping`);
  return (await stop()) ? EXIT_OK : EXIT_FAILURE;
}

/**
 * An error nobody awaited is a bug, and the process cannot tell what state it left: one JSON error line
 * (not Node's raw stack on stderr), then exit 1, so that the orchestrator restarts it. Every record is
 * still processed exactly once: nothing uncommitted was acknowledged.
 */
function exitOnStrayErrors(command: CommandName, logger: Logger): void {
  const exit = (kind: string) => (error: unknown) => {
    logger.error({ error: messageOf(error), stack: error instanceof Error ? error.stack : undefined }, `${command}: ${kind} (a bug); exiting`);
    process.exit(EXIT_FAILURE);
  };
  process.on('unhandledRejection', exit('unhandled rejection'));
  process.on('uncaughtException', exit('uncaught exception'));
}

function isObservable(processor: Runnable): processor is Runnable & Observable {
  const candidate = processor as Partial<Observable>;
  return typeof candidate.health === 'function' && typeof candidate.readiness === 'function' && candidate.metrics !== undefined;
}
