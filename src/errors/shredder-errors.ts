// One family of errors, and what each one means for the record, the batch and the process
// (docs/processors.md, "Failure semantics"). A processor never decides by message text: it asks
// `outcomeOf(error)`, and every command exits with `exitCodeFor(error)`.
//
//   RecordError          the record's own fault (malformed, forged, too large, no subject): it goes to
//                        the dead letter topic and processing goes on (SHREDDER_ERRORS_TOLERANCE=all).
//   TransientError       an infrastructure fault (Kafka, RocksDB, the master-key provider, a registry):
//                        never a record's fault. The batch is aborted, nothing is committed, and it is
//                        retried with back-off; /healthz reports it once it outlasts its bound.
//   ConfigurationError   the configuration or the topic layout is wrong: the process exits with 2.
//   FatalError           the process cannot go on (a record not tolerated, a crashed consumer): exit 1.
//
// An error from outside the family (kafkajs, RocksDB, a bug) is treated as transient while processing
// (retrying never loses a record; dead-lettering could) and as fatal when a command ends with it.

/** What the error means for the record and the process. */
export type ErrorOutcome = 'dead-letter' | 'retry' | 'exit-configuration' | 'exit-fatal';

/** Exit codes of the contract. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The infrastructure a transient fault came from: what /healthz and the logs name. */
export type FaultSource = 'kafka' | 'rocksdb' | 'master-key' | 'schema-registry' | 'processor';

export abstract class ShredderError extends Error {
  abstract readonly outcome: ErrorOutcome;

  /** kafkajs' word for it: the same operation may succeed if tried again later. */
  get retriable(): boolean {
    return this.outcome === 'retry';
  }
}

/**
 * A record's own fault. `message` is the dead letter's reason (shredder.error): it names what is wrong
 * with the record, never its content.
 */
export class RecordError extends ShredderError {
  override readonly name: string = 'RecordError';
  readonly outcome = 'dead-letter' as const;
}

/** An infrastructure fault: abort the batch, commit nothing, retry. */
export class TransientError extends ShredderError {
  override readonly name: string = 'TransientError';
  readonly outcome = 'retry' as const;

  constructor(readonly source: FaultSource, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Bad configuration or topic layout: exit 2, naming the variables to fix. */
export class ConfigurationError extends ShredderError {
  override readonly name: string = 'ConfigurationError';
  readonly outcome = 'exit-configuration' as const;
}

/** The process cannot go on: exit 1. */
export class FatalError extends ShredderError {
  override readonly name: string = 'FatalError';
  readonly outcome = 'exit-fatal' as const;
}

/**
 * What a processor does with an error met while it handles a batch: a record error is dead-lettered
 * by whoever caught it; anything not in the family is retried (see the head of this file).
 */
export function outcomeOf(error: unknown): ErrorOutcome {
  return error instanceof ShredderError ? error.outcome : 'retry';
}

/** Whether the error is a record's own fault (and only then may the record be dead-lettered). */
export function isRecordError(error: unknown): error is RecordError {
  return error instanceof RecordError;
}

/** The exit code of a command that ends with `error`: 2 for configuration, 1 for everything else. */
export function exitCodeFor(error: unknown): number {
  if (error === undefined) return EXIT_OK;
  return error instanceof ShredderError && error.outcome === 'exit-configuration' ? EXIT_USAGE : EXIT_FAILURE;
}

/** RocksDB's status messages (rocksdb::Status::ToString), as the binding rejects with them. */
const ROCKSDB_STATUS = /^(IO error|Corruption|Invalid argument|Not implemented|Operation aborted|Resource busy|Result incomplete|Operation expired|Operation failed\. Try again\.|No space): /;

/** Where an infrastructure fault came from, for logs and metrics (kafkajs and RocksDB raise their own errors). */
export function faultSourceOf(error: unknown): FaultSource {
  if (error instanceof TransientError) return error.source;
  if (error instanceof Error && error.name.startsWith('KafkaJS')) return 'kafka';
  if (error instanceof Error && ROCKSDB_STATUS.test(error.message)) return 'rocksdb';
  return 'processor';
}

/** The error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
