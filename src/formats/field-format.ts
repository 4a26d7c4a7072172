// The seam between the processors and a record value's format in field mode: which fields of a value
// are sealed, where its subject is, and how the value is put back together with each field replaced.
// The encryptor, the decryptor, the library and `reencrypt` see a value only through this interface,
// so a format (JSON; Avro, Protobuf and JSON Schema through a schema registry, in registry/) is one
// implementation in a file of its own. Whole values are not a field format: they are sealed as they
// are, on the processors' fastest path.
//
// Every method throws RecordError (the record's own fault: not of this format, no subject, a field
// that cannot be represented) and nothing else for a bad value.
import type { JsonPath } from '../fields/json-path.js';

/** One selected field of a plaintext value: its path (bound in its envelope's associated data) and what is sealed. */
export interface PlainField {
  path: JsonPath;
  plaintext: Uint8Array;
}

/** A plaintext value, scanned for the encryptor. */
export interface PlainValue {
  /** The subject id found in the value (SHREDDER_SUBJECT_FIELD); undefined: the record key is the subject. */
  subject?: Uint8Array;
  /** The selected fields present, in the value's order. */
  fields: PlainField[];
  /**
   * The value with each field replaced by its envelope, `envelopes[k]` for `fields[k]`, and, given a
   * `pseudonym` (SHREDDER_RECORD_KEYS=pseudonym), its subject field replaced by it. (JSON only: the
   * registry formats do not take a pseudonym, which the configuration refuses.)
   */
  withSealed(envelopes: readonly Uint8Array[], pseudonym?: Uint8Array): Buffer;
}

/** One selected field of an encrypted value: its path, and its envelope, or undefined when it was never encrypted. */
export interface SealedField {
  path: JsonPath;
  envelope: Uint8Array | undefined;
}

/** What became of one sealed field: its plaintext, or null when its key is destroyed (shredded). */
export type OpenedField = Uint8Array | null;

/** An encrypted value, scanned for the decryptor. */
export interface SealedValue {
  subject?: Uint8Array;
  /** The pseudonym the subject field holds instead of a subject id (SHREDDER_RECORD_KEYS=pseudonym), if it does. */
  pseudonym?: Uint8Array;
  fields: SealedField[];
  /**
   * The value with each encrypted field opened, `opened[k]` for `fields[k]` (ignored for a field never
   * encrypted, which stays as it is); a shredded field becomes the format's shredded value. Given
   * `subject`, the subject field (holding a pseudonym) gets that subject id back, as a string.
   */
  withOpened(opened: readonly (OpenedField | undefined)[], subject?: Uint8Array): Buffer;
}

export interface FieldFormat {
  /** For logs and docs: `json`, `schema-registry`. */
  readonly name: string;
  /**
   * Fetches what scanning these values needs (a registry format's schemas), before the batch's
   * synchronous stages; undefined when nothing is missing (JSON never needs anything). Rejects with a
   * TransientError when the registry cannot be reached: the batch is retried, no record is at fault.
   */
  prepare?(values: readonly (Uint8Array | null)[]): Promise<void> | undefined;
  /** The selected fields and subject of a plaintext value. */
  scanPlain(value: Uint8Array): PlainValue;
  /** The selected fields and subject of an encrypted value. */
  scanSealed(value: Uint8Array): SealedValue;
}
