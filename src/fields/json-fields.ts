// Finds where selected fields' values sit in a JSON text, as character ranges of the text itself, so a
// field can be replaced while every other byte of the record stays exactly as the producer wrote it
// (numbers keep their spelling, strings their escapes, the document its whitespace).
//
// One validating pass over the text serves every path at once (the paths form a trie); values no path
// goes into are skipped with native regular expressions. The pass is also what decides that a value
// is JSON (RFC 8259): no JSON.parse, no object tree.
import { RecordError } from '../errors/shredder-errors.js';
import { isUtf8 } from 'node:buffer';
import type { JsonPath } from './json-path.js';

/** The value of one selected field: text.slice(start, end) is its JSON text. */
export interface FieldSpan {
  start: number;
  end: number;
  /** The configured path that selected it (the first one, when several do). */
  path: JsonPath;
}

export class JsonValueError extends RecordError {
  override readonly name: string = 'JsonValueError';
}

interface TrieNode {
  names: Map<string, TrieNode>;
  indexes: Map<number, TrieNode>;
  wildcard?: TrieNode;
  /** The configured path ending here, with its position in the configuration. */
  select?: { path: JsonPath; order: number };
  /** The subject path ends here. */
  subject?: boolean;
}

/** Paths compiled for scanning: the fields to select and, optionally, the subject's path. */
export interface FieldSelector {
  root: TrieNode;
}

const node = (): TrieNode => ({ names: new Map(), indexes: new Map() });

export function compileSelector(paths: readonly JsonPath[], subjectPath?: JsonPath): FieldSelector {
  const root = node();
  const add = (path: JsonPath, mark: (n: TrieNode) => void) => {
    let at = root;
    for (const segment of path.segments) {
      if ('wildcard' in segment) at = at.wildcard ??= node();
      else if ('name' in segment) at = at.names.get(segment.name) ?? (at.names.set(segment.name, node()), at.names.get(segment.name)!);
      else at = at.indexes.get(segment.index) ?? (at.indexes.set(segment.index, node()), at.indexes.get(segment.index)!);
    }
    mark(at);
  };
  paths.forEach((path, order) => add(path, (n) => (n.select ??= { path, order })));
  if (subjectPath) add(subjectPath, (n) => (n.subject = true));
  return { root };
}

export interface ScannedJson {
  text: string;
  /** The selected values, in text order, disjoint (a value inside a selected one goes with it). */
  spans: FieldSpan[];
  /** Where the subject path's value is, if it was asked for and is present. */
  subject?: { start: number; end: number };
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const MAX_DEPTH = 512;
/** No path goes into this value (never pushed to). */
const NONE: TrieNode[] = [];

class Scanner {
  at = 0;
  readonly spans: FieldSpan[] = [];
  subject?: { start: number; end: number };

  constructor(readonly text: string) {}

  fail(what: string): never {
    throw new JsonValueError(`not JSON: ${what} at position ${this.at}`);
  }

  space(): void {
    let c = this.text.charCodeAt(this.at);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = this.text.charCodeAt(++this.at);
  }

  /** Past the string token at the cursor (a '"'); returns where it started. A loop, not a regular
   * expression: a regex backtracks per character and overflows the stack on a multi-megabyte string. */
  string(): number {
    const { text } = this;
    const start = this.at;
    let i = start + 1;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (Number.isNaN(c)) this.fail('an unterminated string');
      if (c < 0x20) this.fail('a control character in a string');
      if (c === 0x5c) {
        const e = text.charCodeAt(i + 1);
        if (e === 0x75) {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) this.fail('a malformed \\u escape');
          i += 6;
          continue;
        }
        // " \ / b f n r t
        if (e !== 0x22 && e !== 0x5c && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) this.fail('a malformed escape');
        i += 2;
        continue;
      }
      i++;
    }
    this.at = i + 1;
    return start;
  }

  /** The value at the cursor; `nodes` are the trie nodes whose paths reach it (none: just skip it). */
  value(nodes: TrieNode[], depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`);
    this.space();
    const start = this.at;
    let selected: { path: JsonPath; order: number } | undefined;
    let isSubject = false;
    for (const n of nodes) {
      if (n.select && (!selected || n.select.order < selected.order)) selected = n.select;
      if (n.subject) isSubject = true;
    }
    const children = selected ? [] : nodes; // a selected value is sealed whole: nothing inside it is looked for
    const c = this.text.charCodeAt(this.at);
    if (c === 0x7b) this.object(children, depth);
    else if (c === 0x5b) this.array(children, depth);
    else if (c === 0x22) this.string();
    else if (c === 0x74 && this.text.startsWith('true', this.at)) this.at += 4;
    else if (c === 0x66 && this.text.startsWith('false', this.at)) this.at += 5;
    else if (c === 0x6e && this.text.startsWith('null', this.at)) this.at += 4;
    else {
      NUMBER.lastIndex = this.at;
      if (!NUMBER.test(this.text) || NUMBER.lastIndex === this.at) this.fail('an unexpected character');
      this.at = NUMBER.lastIndex;
    }
    if (selected) this.spans.push({ start, end: this.at, path: selected.path });
    if (isSubject) {
      if (this.subject) this.fail('the subject field appears twice'); // readers disagree on which one counts
      this.subject = { start, end: this.at };
    }
  }

  object(nodes: TrieNode[], depth: number): void {
    this.at++; // '{'
    this.space();
    if (this.text.charCodeAt(this.at) === 0x7d) {
      this.at++;
      return;
    }
    for (;;) {
      this.space();
      if (this.text.charCodeAt(this.at) !== 0x22) this.fail('a member name expected');
      const nameStart = this.string();
      let children = NONE;
      if (nodes.length > 0) {
        children = [];
        const raw = this.text.slice(nameStart + 1, this.at - 1);
        const name = raw.includes('\\') ? (JSON.parse(this.text.slice(nameStart, this.at)) as string) : raw;
        for (const n of nodes) {
          const named = n.names.get(name);
          if (named) children.push(named);
          if (n.wildcard) children.push(n.wildcard);
        }
      }
      this.space();
      if (this.text.charCodeAt(this.at) !== 0x3a) this.fail("':' expected");
      this.at++;
      this.value(children, depth + 1);
      this.space();
      const c = this.text.charCodeAt(this.at++);
      if (c === 0x7d) return;
      if (c !== 0x2c) this.fail("',' or '}' expected");
    }
  }

  array(nodes: TrieNode[], depth: number): void {
    this.at++; // '['
    this.space();
    if (this.text.charCodeAt(this.at) === 0x5d) {
      this.at++;
      return;
    }
    for (let index = 0; ; index++) {
      const children: TrieNode[] = nodes.length > 0 ? [] : NONE;
      for (const n of nodes) {
        const indexed = n.indexes.get(index);
        if (indexed) children.push(indexed);
        if (n.wildcard) children.push(n.wildcard);
      }
      this.value(children, depth + 1);
      this.space();
      const c = this.text.charCodeAt(this.at++);
      if (c === 0x5d) return;
      if (c !== 0x2c) this.fail("',' or ']' expected");
    }
  }
}

/**
 * Scans a record value that must be a JSON object in UTF-8: the selected fields (and the subject's
 * value). JsonValueError says why a value is not one.
 */
export function scanJsonObject(value: Uint8Array, selector: FieldSelector): ScannedJson {
  if (!isUtf8(value)) throw new JsonValueError('not JSON: the value is not valid UTF-8');
  const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  return scanJsonText(text, selector);
}

export function scanJsonText(text: string, selector: FieldSelector): ScannedJson {
  const scanner = new Scanner(text);
  scanner.space();
  if (scanner.text.charCodeAt(scanner.at) !== 0x7b) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text); // only to say what it is instead (its error text would quote the value: not used)
    } catch {
      throw new JsonValueError('not JSON: the value does not start with a JSON object');
    }
    throw new JsonValueError(`not a JSON object: field mode needs an object, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : `a ${typeof parsed}`}`);
  }
  try {
    scanner.value([selector.root], 0);
    scanner.space();
    if (scanner.at !== text.length) scanner.fail('text after the JSON object');
  } catch (err) {
    if (err instanceof JsonValueError) throw err;
    // whatever else a hostile value provokes (stack, memory) is that value's problem, not the batch's
    throw new JsonValueError(`not JSON: the value could not be scanned (${(err as Error).name})`);
  }
  return { text, spans: scanner.spans, subject: scanner.subject };
}

/** The values `paths` select in a JSON object's text (see scanJsonText). */
export function locateFields(text: string, paths: readonly JsonPath[]): FieldSpan[] {
  return scanJsonText(text, compileSelector(paths)).spans;
}

/** `text` with each span replaced by its replacement (spans disjoint, in text order). */
export function spliceFields(text: string, spans: readonly FieldSpan[], replacements: readonly string[]): string {
  let out = '';
  let at = 0;
  spans.forEach((span, i) => {
    out += text.slice(at, span.start) + replacements[i];
    at = span.end;
  });
  return out + text.slice(at);
}
