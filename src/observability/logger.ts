// JSON lines to stdout (pino). Never log keys, payloads or personal data: a subject appears only as
// subjectRef(), a keyed hash that cannot be reversed without the master key but lets an operator who
// holds it find a given subject's lines.
import { createHmac } from 'node:crypto';
import { pino, type Logger } from 'pino';
import type { Keyring } from '../keys/keyring.js';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: 'kafka-shredder' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination as pino.DestinationStream | undefined,
  );
}

export type SubjectRef = (subject: Uint8Array) => string;

/**
 * A subject's reference for logs: HMAC-SHA256 under a key derived from the current master key (any
 * provider can derive it, an HSM too), 16 hex digits. It changes when the current master key does.
 */
export function subjectRefFor(keyring: Keyring): SubjectRef {
  const logKey = keyring.derive('log subject reference v1');
  return (subject) => createHmac('sha256', logKey).update(subject).digest('hex').slice(0, 16);
}
