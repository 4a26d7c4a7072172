// One line of `kafka-shredder export`: a record of the subject as JSON (see docs/operations.md,
// "Subject access export"). Bytes are given as text when they are valid UTF-8 and as base64 otherwise,
// so that every line is valid JSON and any value survives the round trip.
import type { IHeaders, KafkaMessage } from 'kafkajs';

/** What became of a record: `readable` (decrypted), `shredded` (its key generation was destroyed by a forget), a `forget` marker, a `tombstone` passed through, or `unreadable` (see `reason`). */
export type ExportedStatus = 'readable' | 'shredded' | 'forget' | 'tombstone' | 'unreadable';

export type ExportedBytes = { text: string } | { base64: string };

export interface ExportedRecord {
  topic: string;
  partition: number;
  offset: string;
  /** ISO 8601, from the record's timestamp (the producer's, which the encryptor keeps). */
  timestamp: string;
  status: ExportedStatus;
  key: ExportedBytes | null;
  /** In record order; a header may repeat. */
  headers: { name: string; value: ExportedBytes | null }[];
  /** The plaintext; in field mode the record with its fields decrypted (shredded fields as the decryptor writes them). */
  value: ExportedBytes | null;
  /** Field mode: the fields whose key generation was destroyed. */
  shreddedFields?: string[];
  /** Why an `unreadable` record could not be opened (as the dead letter topic would say). */
  reason?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function exportedBytes(bytes: Uint8Array | string | null | undefined): ExportedBytes | null {
  if (bytes === null || bytes === undefined) return null;
  if (typeof bytes === 'string') return { text: bytes };
  try {
    return { text: utf8.decode(bytes) };
  } catch {
    return { base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') };
  }
}

function exportedHeaders(headers: IHeaders | undefined): ExportedRecord['headers'] {
  const out: ExportedRecord['headers'] = [];
  for (const [name, value] of Object.entries(headers ?? {})) {
    for (const one of Array.isArray(value) ? value : [value]) out.push({ name, value: exportedBytes(one) });
  }
  return out;
}

/** `outcome.key`: the key to list the record under, when not its own (the subject id of a pseudonym). */
export function exportedRecord(
  topic: string,
  partition: number,
  message: KafkaMessage,
  outcome: { status: ExportedStatus; value: Uint8Array | null; shreddedFields?: string[]; reason?: string; key?: Uint8Array | null },
): ExportedRecord {
  const record: ExportedRecord = {
    topic,
    partition,
    offset: message.offset,
    timestamp: new Date(Number(message.timestamp)).toISOString(),
    status: outcome.status,
    key: exportedBytes(outcome.key !== undefined ? outcome.key : message.key),
    headers: exportedHeaders(message.headers),
    value: exportedBytes(outcome.value),
  };
  if (outcome.shreddedFields?.length) record.shreddedFields = outcome.shreddedFields;
  if (outcome.reason !== undefined) record.reason = outcome.reason;
  return record;
}
