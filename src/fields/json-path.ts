// The JSON paths of SHREDDER_FIELDS and SHREDDER_SUBJECT_FIELD: `$` then dotted names (`.email`),
// array indexes (`[2]`) and wildcards (`[*]`: every element of an array, every member of an object).
import { ConfigurationError } from '../errors/shredder-errors.js';

export type PathSegment = { name: string } | { index: number } | { wildcard: true };

export interface JsonPath {
  /** As written in the configuration: field envelopes bind it in their associated data. */
  text: string;
  segments: PathSegment[];
}

const SEGMENT = /\.([A-Za-z_$][\w$-]*)|\[(\d+|\*)\]/y;

export class JsonPathError extends ConfigurationError {
  override readonly name: string = 'JsonPathError';
}

export function parseJsonPath(text: string): JsonPath {
  if (!text.startsWith('$') || text.length < 2) throw new JsonPathError(`${JSON.stringify(text)} is not a JSON path like $.email, $.address.street or $.phones[*]`);
  const segments: PathSegment[] = [];
  SEGMENT.lastIndex = 1;
  while (SEGMENT.lastIndex < text.length) {
    const at = SEGMENT.lastIndex;
    const match = SEGMENT.exec(text);
    if (!match || match.index !== at) throw new JsonPathError(`${JSON.stringify(text)} is not a JSON path like $.email, $.address.street or $.phones[*]`);
    if (match[1] !== undefined) segments.push({ name: match[1] });
    else if (match[2] === '*') segments.push({ wildcard: true });
    else segments.push({ index: Number(match[2]) });
  }
  return { text, segments };
}

/** Whether every location `inner` can match lies within (or is) a location `outer` can match. */
export function pathCovers(outer: JsonPath, inner: JsonPath): boolean {
  if (outer.segments.length > inner.segments.length) return false;
  return outer.segments.every((segment, i) => {
    const other = inner.segments[i];
    if ('wildcard' in segment) return true;
    if ('name' in segment) return 'name' in other ? other.name === segment.name : 'wildcard' in other;
    return 'index' in other ? other.index === segment.index : 'wildcard' in other;
  });
}
