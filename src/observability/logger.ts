// JSON lines to stdout (pino). Never log keys, payloads or personal data: a subject appears only as
// subjectRef(), a keyed hash that cannot be reversed without the master key but lets an operator who
// holds it find a given subject's lines.
import { createHmac } from 'node:crypto';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: 'kafka-shredder' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination as pino.DestinationStream | undefined,
  );
}

export type SubjectRef = (subject: Uint8Array) => string;

/** A subject's reference for logs: HMAC-SHA256 under a key derived from the master key, 16 hex digits. */
export function subjectRefFor(masterKey: Uint8Array): SubjectRef {
  const logKey = createHmac('sha256', masterKey).update('kafka-shredder log subject reference v1').digest();
  return (subject) => createHmac('sha256', logKey).update(subject).digest('hex').slice(0, 16);
}
