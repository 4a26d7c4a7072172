// A subject's map key: its bytes as a latin1 string (one char per byte, so any bytes map one to one).
// The same subjects come back batch after batch, so the strings are interned: a subject seen before
// gets the string made the first time, found by a hash of its bytes, instead of a new string. That
// saves making the string and, more, hashing and comparing a new string in every map lookup after it.
import { bufferView } from '../wire/buffer-view.js';

/** Bound of the interned strings; when reached, the table starts over (it is only a cache). */
const INTERNED_LIMIT = 65_536;
/** Strings kept per hash value; a longer bucket (colliding subjects) makes new strings instead. */
const BUCKET_LIMIT = 4;

const interned = new Map<number, string[]>();
let internedCount = 0;

const latin1 = (subject: Uint8Array): string => bufferView(subject).toString('latin1');

function sameBytes(id: string, subject: Uint8Array): boolean {
  if (id.length !== subject.length) return false;
  for (let i = 0; i < subject.length; i++) if (id.charCodeAt(i) !== subject[i]) return false;
  return true;
}

/** A 32-bit FNV-1a hash of a subject's bytes (and its length), for tables keyed by subject bytes. */
export function subjectHash(subject: Uint8Array): number {
  let hash = 0x811c9dc5 ^ subject.length;
  for (let i = 0; i < subject.length; i++) hash = Math.imul(hash ^ subject[i], 0x01000193);
  return hash;
}

/** The subject's map key, equal to its bytes as latin1. */
export function subjectId(subject: Uint8Array): string {
  if (subject.length > 64) return latin1(subject); // (subjects are short ids; a long one is not worth hashing)
  const hash = subjectHash(subject);
  const bucket = interned.get(hash);
  if (bucket !== undefined) {
    for (let k = 0; k < bucket.length; k++) if (sameBytes(bucket[k], subject)) return bucket[k];
  }
  const id = latin1(subject);
  if (internedCount >= INTERNED_LIMIT) {
    interned.clear();
    internedCount = 0;
  }
  if (bucket === undefined || internedCount === 0) interned.set(hash, [id]);
  else if (bucket.length < BUCKET_LIMIT) bucket.push(id);
  else return id;
  internedCount++;
  return id;
}
