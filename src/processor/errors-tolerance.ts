// SHREDDER_ERRORS_TOLERANCE, as Kafka Connect's errors.tolerance: `all` dead-letters a record that
// cannot be processed and goes on; `none` stops the processor at the first one, before its batch
// commits, so the record and everything after it stay unprocessed (and uncommitted) until an operator
// has looked.
import { FatalError } from '../errors/shredder-errors.js';
import type { IHeaders, Message } from 'kafkajs';
import type { ErrorsTolerance } from '../config/config.js';
import { isShreddedDeadLetter } from '../kafka/dead-letter.js';
import { ERROR_CLASS_HEADER, ERROR_HEADER, SOURCE_HEADER, headerText } from '../wire/headers.js';

/** Thrown from a batch handler: the processor stops for good instead of retrying the batch. */
export class IntolerableRecordError extends FatalError {
  override readonly name: string = 'IntolerableRecordError';
}

/**
 * Throws IntolerableRecordError for the first dead letter when nothing may be dead-lettered. Shredded
 * records sent to the dead letter topic on purpose (SHREDDER_ON_SHREDDED=dlq) are no errors.
 */
export function enforceErrorsTolerance(tolerance: ErrorsTolerance, deadLetters: readonly Message[]): void {
  if (tolerance === 'all') return;
  const first = deadLetters.find((dead) => !isShreddedDeadLetter(dead));
  if (!first) return;
  const headers = first.headers as IHeaders;
  throw new IntolerableRecordError(
    `SHREDDER_ERRORS_TOLERANCE=none: the record at ${headerText(headers, SOURCE_HEADER)} cannot be processed ` +
      `(${headerText(headers, ERROR_CLASS_HEADER)}: ${headerText(headers, ERROR_HEADER)}); stopping, nothing of its batch was committed`,
  );
}
