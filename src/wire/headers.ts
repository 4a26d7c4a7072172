// Record headers of the public contract.
export const COMMAND_HEADER = 'shredder.command';
export const FORGET_COMMAND = 'forget';
export const STATUS_HEADER = 'shredder.status';
export const SHREDDED_STATUS = 'shredded';
export const ERROR_HEADER = 'shredder.error';
/** Not in the contract (an extension of field mode): on a shredded record, the paths of its shredded fields, comma-separated. */
export const SHREDDED_FIELDS_HEADER = 'shredder.shredded-fields';
export const SOURCE_HEADER = 'shredder.source';
/**
 * Not in the contract (extensions, after Kafka Connect's `__connect.errors.*`): on dead letters, the
 * failure's class and pipeline stage, and the source topic, partition and offset one header each.
 */
export const ERROR_CLASS_HEADER = 'shredder.error.class';
export const ERROR_STAGE_HEADER = 'shredder.error.stage';
export const ERROR_TOPIC_HEADER = 'shredder.error.topic';
export const ERROR_PARTITION_HEADER = 'shredder.error.partition';
export const ERROR_OFFSET_HEADER = 'shredder.error.offset';
/**
 * Not in the contract (extensions): on a dead letter too large for the dead letter topic, which is
 * written without its value, why (`shredder.error.value-dropped`) and how many bytes the value had.
 */
export const VALUE_DROPPED_HEADER = 'shredder.error.value-dropped';
export const VALUE_BYTES_HEADER = 'shredder.error.value-bytes';
/**
 * Not in the contract (an implementation detail of the keys topic): on a tombstone and on the first key
 * record created after a forget, the forget's time in ms, so a restored store still knows that records of
 * the subject produced before it must not become readable (see docs/processors.md, "Forget").
 */
export const FORGOTTEN_AT_HEADER = 'shredder.forgotten-at';

type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** A header's value as text (the first one if repeated). */
export function headerText(headers: Record<string, HeaderValue> | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

export function isForgetRequest(headers: Record<string, HeaderValue> | undefined): boolean {
  return headerText(headers, COMMAND_HEADER) === FORGET_COMMAND;
}
