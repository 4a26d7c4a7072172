// JSON Schema values framed for a schema registry: after the 5-byte header, the payload is JSON text,
// and its fields are encrypted exactly as in JSON field mode (a selected field's JSON text is sealed and
// replaced by the JSON string "shr1:" + base64url(envelope)), every other byte, the header's included,
// kept as written. The schema only decides which fields are selected (configured paths, and properties
// tagged with `confluent:tags`), whether each one may hold the string an encrypted field becomes, and
// what a shredded field becomes: `null` where the schema allows it, else `""`, so the value stays valid.
//
// Schemas are plain JSON, walked here: `$ref`s to the document itself (`#/definitions/x`, `#/$defs/x`,
// any JSON pointer) and to a referenced schema by its reference name (optionally with a `#/...`
// fragment) are followed; anything else (anchors, remote URLs) is not, and describes nothing.
import { RecordError } from '../../errors/shredder-errors.js';
import { compileSelector } from '../../fields/json-fields.js';
import { pathCovers, type JsonPath, type PathSegment } from '../../fields/json-path.js';
import { parseRegistryFrame, reframe } from '../../wire/registry-framing.js';
import type { PlainValue, SealedValue } from '../field-format.js';
import { JsonFieldFormat } from '../json-field-format.js';
import type { RegistrySelection, ResolvedSchema, SchemaFields, SchemaFormat } from './schema-fields.js';


/** A JSON Schema object (a boolean schema, `true` or `false`, is never one). */
type SchemaNode = Record<string, unknown>;

/** A schema node and the document its local `$ref`s resolve in. */
interface Located {
  node: SchemaNode;
  document: SchemaDocument;
}

interface SchemaDocument {
  root: unknown;
  /** For messages: `schema id 7`, `referenced schema "address.json" (id 8)`. */
  description: string;
}

/** What the schema allows at a field's location, as far as encryption cares. */
interface FieldTypes {
  string: boolean;
  null: boolean;
  /** The declared types of a constraint that forbids a string (for the problem's message). */
  declared: string[];
}

const ANY: FieldTypes = { string: true, null: true, declared: [] };

/** Every constraint holds (allOf, a `$ref` beside the node's own keywords, the members a wildcard selects). */
function both(a: FieldTypes, b: FieldTypes): FieldTypes {
  return { string: a.string && b.string, null: a.null && b.null, declared: a.string ? b.declared : a.declared };
}

/** One of the constraints holds (anyOf, oneOf). */
function either(a: FieldTypes, b: FieldTypes): FieldTypes {
  return { string: a.string || b.string, null: a.null || b.null, declared: [...new Set([...a.declared, ...b.declared])] };
}

const reduceDefined = (results: (FieldTypes | undefined)[], combine: (a: FieldTypes, b: FieldTypes) => FieldTypes) =>
  results.filter((r): r is FieldTypes => r !== undefined).reduce<FieldTypes | undefined>((acc, r) => (acc ? combine(acc, r) : r), undefined);

const isNode = (value: unknown): value is SchemaNode => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The schemas in a keyword holding a list of them (allOf, a tuple's items), objects only. */
const nodesOf = (value: unknown): SchemaNode[] => (Array.isArray(value) ? value.filter(isNode) : []);

/** The schemas in a keyword holding a map of them (properties, patternProperties, definitions). */
const memberNodes = (value: unknown): [string, SchemaNode][] =>
  isNode(value) ? Object.entries(value).filter((entry): entry is [string, SchemaNode] => isNode(entry[1])) : [];

function typesOf(type: unknown): FieldTypes | undefined {
  const declared = typeof type === 'string' ? [type] : Array.isArray(type) ? type.filter((t): t is string => typeof t === 'string') : undefined;
  if (!declared) return undefined;
  return { string: declared.includes('string'), null: declared.includes('null'), declared };
}

/** The referenced schemas by reference name, parsed once when a `$ref` first names them. */
class SchemaSet {
  private readonly documents = new Map<string, SchemaDocument | null>();

  constructor(private readonly schema: ResolvedSchema) {}

  /** The schema a `$ref` names, or undefined when it is not one this walk can follow. */
  resolve(ref: string, from: SchemaDocument): Located | undefined {
    const hash = ref.indexOf('#');
    const name = hash < 0 ? ref : ref.slice(0, hash);
    const fragment = hash < 0 ? '' : ref.slice(hash + 1);
    const document = name === '' ? from : this.referenced(name);
    if (!document) return undefined;
    const target = pointerTarget(document.root, fragment);
    return isNode(target) ? { node: target, document } : undefined;
  }

  private referenced(name: string): SchemaDocument | undefined {
    if (!this.documents.has(name)) {
      const found = this.schema.referenced.find((r) => r.name === name);
      this.documents.set(name, found ? parseDocument(found.schema.schema, `referenced schema ${JSON.stringify(name)} (id ${found.schema.id}) of schema id ${this.schema.id}`) : null);
    }
    return this.documents.get(name) ?? undefined;
  }
}

function parseDocument(text: string, description: string): SchemaDocument {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    throw new RecordError(`${description} is not valid JSON`); // (the parser's message would quote the schema)
  }
  if (!isNode(root) && typeof root !== 'boolean') throw new RecordError(`${description} is not a JSON Schema (an object or a boolean)`);
  return { root, description };
}

/** The value a JSON pointer fragment (`/definitions/x`, possibly percent-encoded) designates; '' is the root. */
function pointerTarget(root: unknown, fragment: string): unknown {
  if (fragment === '') return root;
  if (!fragment.startsWith('/')) return undefined; // an anchor (#name): not followed
  let decoded: string;
  try {
    decoded = decodeURIComponent(fragment);
  } catch {
    return undefined;
  }
  let at: unknown = root;
  for (const token of decoded.slice(1).split('/')) {
    const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(at) && /^\d+$/.test(key)) at = at[Number(key)];
    else if (isNode(at) && Object.hasOwn(at, key)) at = at[key];
    else return undefined;
  }
  return at;
}

/** A tagged field's path text: `.name` where the JSON path syntax allows it, else `["name"]`. */
const PLAIN_NAME = /^[A-Za-z_$][\w$-]*$/;
function pathText(segments: readonly PathSegment[]): string {
  return '$' + segments.map((s) => ('wildcard' in s ? '[*]' : 'index' in s ? `[${s.index}]` : PLAIN_NAME.test(s.name) ? `.${s.name}` : `[${JSON.stringify(s.name)}]`)).join('');
}

/** Deeper than any record a schema is written for: a bound on the walk besides the visited set (which alone ends a recursive schema). */
const MAX_TAG_PATH_SEGMENTS = 32;

class SchemaWalk {
  constructor(private readonly schemas: SchemaSet) {}

  /**
   * What the schema allows at `segments`, or undefined when the schema does not describe that location.
   * `active` holds the nodes being resolved at each segment index, so that a `$ref` cycle that does not
   * descend (a → b → a) ends.
   */
  typesAt(at: Located, segments: readonly PathSegment[], index = 0, active = new Map<SchemaNode, Set<number>>()): FieldTypes | undefined {
    const { node, document } = at;
    const seen = active.get(node) ?? new Set<number>();
    if (seen.has(index)) return undefined;
    active.set(node, seen.add(index));
    try {
      const descend = (next: Located, nextIndex: number) => this.typesAt(next, segments, nextIndex, active);
      const here = (child: SchemaNode) => descend({ node: child, document }, index + 1);
      const own = index === segments.length ? (typesOf(node.type) ?? ANY) : reduceDefined(this.children(node, segments[index]).map(here), both);
      const target = typeof node.$ref === 'string' ? this.schemas.resolve(node.$ref, document) : undefined;
      const alternatives = (keyword: string) => reduceDefined(nodesOf(node[keyword]).map((branch) => descend({ node: branch, document }, index)), either);
      return reduceDefined([
        own,
        ...nodesOf(node.allOf).map((branch) => descend({ node: branch, document }, index)),
        target && descend(target, index),
        alternatives('anyOf'),
        alternatives('oneOf'),
      ], both);
    } finally {
      seen.delete(index);
    }
  }

  /** The subschemas of `node`'s own keywords (no composition, no `$ref`) a path segment goes into. */
  private children(node: SchemaNode, segment: PathSegment): SchemaNode[] {
    if ('name' in segment) {
      const named: SchemaNode[] = [];
      const properties = node.properties;
      if (isNode(properties) && Object.hasOwn(properties, segment.name) && isNode(properties[segment.name])) named.push(properties[segment.name] as SchemaNode);
      for (const [pattern, schema] of memberNodes(node.patternProperties)) if (matches(pattern, segment.name)) named.push(schema);
      if (named.length === 0 && isNode(node.additionalProperties)) named.push(node.additionalProperties);
      return named;
    }
    const tuple = [...nodesOf(node.prefixItems), ...nodesOf(node.items)];
    const elements = [...(isNode(node.items) ? [node.items] : []), ...(isNode(node.additionalItems) ? [node.additionalItems] : [])];
    if ('index' in segment) return tuple[segment.index] ? [tuple[segment.index]] : elements;
    // `[*]`: every element of an array and every member of an object, each of which must allow a string
    return [
      ...tuple,
      ...elements,
      ...memberNodes(node.properties).map(([, schema]) => schema),
      ...memberNodes(node.patternProperties).map(([, schema]) => schema),
      ...(isNode(node.additionalProperties) ? [node.additionalProperties] : []),
    ];
  }

  /**
   * The paths of the properties tagged with one of `tags`, from the root, each once, in schema order;
   * and where the walk stopped at a recursion that has tagged properties below it (`recursions`): a
   * path names one depth, so the copies of those properties deeper down are not selected by them.
   */
  taggedPaths(root: Located, tags: ReadonlySet<string>): { paths: PathSegment[][]; recursions: PathSegment[][] } {
    const found = new Map<string, PathSegment[]>();
    const active = new Set<SchemaNode>(); // the nodes on the walk's current branch: a recursive schema ends here
    const cuts: { node: SchemaNode; segments: PathSegment[] }[] = [];
    const taggedBelow = new Set<SchemaNode>();
    let tagHits = 0;
    const walk = ({ node, document }: Located, segments: PathSegment[]) => {
      const nodeTags = node['confluent:tags'];
      if (segments.length > 0 && Array.isArray(nodeTags) && nodeTags.some((tag) => tags.has(tag as string))) {
        if (!found.has(pathText(segments))) found.set(pathText(segments), segments); // sealed whole: nothing inside it is looked for
        tagHits++;
        return;
      }
      if (active.has(node) || segments.length > MAX_TAG_PATH_SEGMENTS) {
        cuts.push({ node, segments });
        return;
      }
      const hitsBefore = tagHits;
      active.add(node);
      const inside = (child: SchemaNode, segment?: PathSegment) => walk({ node: child, document }, segment ? [...segments, segment] : segments);
      if (typeof node.$ref === 'string') {
        const target = this.schemas.resolve(node.$ref, document);
        if (target) walk(target, segments);
      }
      for (const keyword of ['allOf', 'anyOf', 'oneOf']) for (const branch of nodesOf(node[keyword])) inside(branch);
      for (const [name, schema] of memberNodes(node.properties)) inside(schema, { name });
      for (const [, schema] of memberNodes(node.patternProperties)) inside(schema, { wildcard: true });
      if (isNode(node.additionalProperties)) inside(node.additionalProperties, { wildcard: true });
      [...nodesOf(node.prefixItems), ...nodesOf(node.items)].forEach((schema, index) => inside(schema, { index }));
      if (isNode(node.items)) inside(node.items, { wildcard: true });
      if (isNode(node.additionalItems)) inside(node.additionalItems, { wildcard: true });
      active.delete(node);
      if (tagHits > hitsBefore) taggedBelow.add(node);
    };
    walk(root, []);
    // (known only once the walk is done: a cut is met before the rest of its node's subtree)
    const recursions = cuts.filter((cut) => taggedBelow.has(cut.node)).map((cut) => cut.segments);
    return { paths: [...found.values()], recursions };
  }
}

/** Whether a patternProperties pattern matches a name; a pattern JavaScript cannot compile matches nothing. */
function matches(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(name);
  } catch {
    return false; // (an ECMA-262 dialect the schema's author did not mean: describes nothing here)
  }
}

function describeTypes(declared: readonly string[]): string {
  return declared.length > 0 ? declared.join(' or ') : 'a type other than string';
}

class JsonSchemaFields implements SchemaFields {
  readonly problems: string[] = [];
  readonly matchedPaths = new Set<string>();
  readonly encryptedPaths: string[];
  private readonly json: JsonFieldFormat;
  /** What a shredded field becomes, by the path that selects it. */
  private readonly shreddedValues = new Map<JsonPath, string>();

  constructor(schema: ResolvedSchema, { paths, tags, subjectPath }: RegistrySelection) {
    const document = parseDocument(schema.schema, `JSON schema id ${schema.id}`);
    const walk = new SchemaWalk(new SchemaSet(schema));
    const root: Located | undefined = isNode(document.root) ? { node: document.root, document } : undefined;

    const selected = [...paths];
    const configured = new Set(paths.map((p) => p.text));
    let recursions: PathSegment[][] = [];
    if (root && tags.length > 0) {
      const tagged = walk.taggedPaths(root, new Set(tags));
      for (const segments of tagged.paths) {
        const text = pathText(segments);
        if (!configured.has(text)) selected.push({ text, segments });
      }
      recursions = tagged.recursions;
    }
    this.encryptedPaths = selected.map((p) => p.text);
    const covering = subjectPath && selected.find((path) => !configured.has(path.text) && pathCovers(path, subjectPath));
    if (covering) this.problems.push(`${subjectPath.text} (the subject field) is tagged, in ${covering.text}, and would be encrypted in schema id ${schema.id}: the subject must stay readable`);
    // Fail closed: tagged data a path cannot reach would be written in the clear.
    for (const segments of recursions) {
      const recursion: JsonPath = { text: pathText(segments), segments };
      if (selected.some((path) => pathCovers(path, recursion))) continue;
      const problem = `${recursion.text} in schema id ${schema.id} repeats a schema with tagged fields (a recursive schema): a path names one depth, so the tagged fields at ${recursion.text} and below would not be encrypted`;
      if (!this.problems.includes(problem)) this.problems.push(problem);
    }

    for (const path of selected) {
      const types = root ? walk.typesAt(root, path.segments) : undefined;
      if (types && configured.has(path.text)) this.matchedPaths.add(path.text);
      if (types && !types.string) {
        this.problems.push(`${path.text} is of type ${describeTypes(types.declared)} in schema id ${schema.id}: an encrypted field is a string, so the schema must allow one`);
      }
      // a path the schema does not describe has no type given, so null is as valid there as anything
      this.shreddedValues.set(path, !types || types.null ? 'null' : '""');
    }
    // the payload is JSON field mode's, so JSON field mode scans it; a shredded field becomes what its schema allows
    this.json = new JsonFieldFormat({ selector: compileSelector(selected, subjectPath), subjectPath }, (path) => this.shreddedValues.get(path) ?? 'null');
  }

  scanPlain(value: Uint8Array): PlainValue {
    const frame = parseRegistryFrame(value);
    const plain = this.json.scanPlain(frame.payload);
    return { ...plain, withSealed: (envelopes, pseudonym) => reframe(frame, plain.withSealed(envelopes, pseudonym)) };
  }

  scanSealed(value: Uint8Array): SealedValue {
    const frame = parseRegistryFrame(value);
    const sealed = this.json.scanSealed(frame.payload);
    return { ...sealed, withOpened: (opened, subject) => reframe(frame, sealed.withOpened(opened, subject)) };
  }

}

export const jsonSchemaFields: SchemaFormat = {
  schemaType: 'JSON',
  compile: (schema, selection) => new JsonSchemaFields(schema, selection),
};
