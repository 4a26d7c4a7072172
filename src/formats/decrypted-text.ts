// A decrypted string field back as text: its bytes must be UTF-8, strictly (a lenient decoder would
// turn bad bytes into U+FFFD and write a value the producer never wrote).
import { RecordError } from '../errors/shredder-errors.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of `bytes`; a RecordError with `reason` (the dead letter's) when they are not UTF-8. */
export function decryptedText(bytes: Uint8Array, reason: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new RecordError(reason);
  }
}
