// The Protobuf registry format (schemaType PROTOBUF): a registered .proto file, its references
// parsed into the same protobufjs Root, compiled against the field selection (schema-fields.ts).
//
// Which message a value holds is its frame's message indexes ([0] the file's first top-level message,
// [2, 1] the second message nested in the third), counted in the declarations of the registered file
// only: imports declare types too, so the order comes from parsing the file alone. Each message type
// is compiled on the first value naming it and kept. `problems` and `encryptedPaths` describe the
// first top-level message, the one Confluent's ProtobufSchema takes as the schema's type; a value of
// another message type with problems of its own is a RecordError when scanned. `matchedPaths` counts a
// configured path that names a field in any message of the file, nested ones included.
//
// Selection: `$.a.b` goes through singular message fields, `[*]` through every element of a repeated
// field and every value of a map, `[n]` to one element of a repeated field (maps take `[*]` only); oneof
// members are plain fields. A field tagged with `(confluent.field_meta).tags` gets the path it has from
// the message (`$.replies[*].author`); the walk follows the value, not the schema, so a recursive type
// is followed as deep as the value goes, up to TAG_DEPTH_LIMIT messages (deeper: a RecordError rather
// than a tagged field left in clear). A tagged field that is not string or bytes is a problem, as
// CSFLE refuses it: skipping it would leave a field its owners marked personal in clear.
//
// Round trip: a value is decoded and encoded again, so its bytes may change (field order, packing)
// while the message stays the same; int64 values are `long` Longs and keep every bit. Unknown fields
// are kept (the reader's discardUnknown is turned off) and written back after the known ones.
// A shredded field is cleared: a singular field is removed (unset where it has presence, the
// default "" or empty bytes otherwise; a proto2 required field gets its default), a repeated element
// or map value becomes "" or empty bytes, since it cannot be absent.
import protobuf, { type Field, type IParserResult, type Namespace, type Root, type Type } from 'protobufjs';
import { RecordError, messageOf } from '../../errors/shredder-errors.js';
import { envelopeOfFieldBytes, envelopeOfFieldText, pseudonymOfSubjectText, sealedFieldBytes, sealedFieldText, subjectNotStringReason, subjectPseudonymText } from '../../fields/field-envelope.js';
import type { JsonPath, PathSegment } from '../../fields/json-path.js';
import { parseProtobufFrame, reframe, type ProtobufRegistryFrame } from '../../wire/registry-framing.js';
import type { OpenedField, PlainValue, SealedValue } from '../field-format.js';
import { decryptedText } from '../decrypted-text.js';
import type { RegistrySelection, ResolvedSchema, SchemaFields, SchemaFormat } from './schema-fields.js';
import { bufferView } from '../../wire/buffer-view.js';

/** How deep in nested messages tagged fields are looked for: a deeper value is refused, not half encrypted. */
const TAG_DEPTH_LIMIT = 32;
/** Paths made for tagged fields, kept so each is one object (pathBytes caches by object); past this, made afresh. */
const DERIVED_PATHS_KEPT = 4096;
/** Field types a subject is read from as decimal text. */
const INTEGER_TYPES: ReadonlySet<string> = new Set(['int32', 'sint32', 'uint32', 'fixed32', 'sfixed32', 'int64', 'sint64', 'uint64', 'fixed64', 'sfixed64']);
/** protobufjs' messages quote a token or a field name at most; the cap keeps a dead letter's reason short anyway. */
const REASON_CHARS = 200;
const ROOT_PATH: JsonPath = { text: '$', segments: [] };
/** (shared by the fields no configured path names, most of them: no array per field and value) */
const NOTHING_CHOSEN: readonly FieldSelection[] = [];

/** What the configured paths select at one place: the field itself (leaf) or fields of the message there. */
interface Selected {
  leaf?: JsonPath;
  message?: MessageSelection;
}

/** A field's selection: singular (leaf, message), every element or value (`[*]`), or one element (`[n]`). */
interface FieldSelection extends Selected {
  every?: Selected;
  at?: Map<number, Selected>;
}

/** The configured paths below one message, by field name. */
type MessageSelection = Map<string, FieldSelection>;

/** One message type's tagged fields, and its message fields that lead to more (a graph: types may recurse). */
interface TagNode {
  tagged: Set<Field>;
  below: Map<Field, TagNode>;
}

/** One step of a path through messages: a field, and for a repeated or map field which elements. */
interface Step {
  field: Field;
  element?: number | 'every';
}

/** One message type compiled against the selection. */
interface MessagePlan {
  type: Type;
  /** The full name without the leading dot, as problems and errors show it. */
  name: string;
  problems: string[];
  selection: MessageSelection;
  tags?: TagNode;
  /** The subject field's steps from the message. */
  subject?: Step[];
  encryptedPaths: string[];
}

/** A decoded message, repeated field or map, as protobufjs makes them. */
type Holder = Record<string | number, unknown>;

/** A selected field of a decoded value: where it is, so that it can be replaced. */
interface Slot {
  path: JsonPath;
  field: Field;
  holder: Holder;
  key: string | number;
  /** A repeated field's element or a map's value, which cannot be absent. */
  element: boolean;
}

export const protobufFields: SchemaFormat = {
  schemaType: 'PROTOBUF',
  compile: (schema, selection) => new ProtobufSchemaFields(schema, selection),
};

class ProtobufSchemaFields implements SchemaFields {
  readonly problems: readonly string[];
  readonly matchedPaths: ReadonlySet<string>;
  readonly encryptedPaths: readonly string[];
  private readonly schemaId: number;
  private readonly root: Root;
  /** The registered file's top-level messages in declaration order, from the file parsed alone. */
  private readonly declared: Type[];
  private readonly plans = new Map<string, MessagePlan>();
  /** Paths by text: the configured ones, then those made for tagged fields. */
  private readonly paths = new Map<string, JsonPath>();

  constructor(schema: ResolvedSchema, private readonly selection: RegistrySelection) {
    this.schemaId = schema.id;
    for (const path of selection.paths) this.paths.set(path.text, path);
    const fileAlone = new protobuf.Root();
    const file = this.parse(schema.schema, fileAlone, 'its .proto text');
    this.root = this.resolvingRoot(schema);
    const home = file.package ? fileAlone.lookup(file.package) : fileAlone;
    this.declared = home instanceof protobuf.Namespace ? messagesIn(home) : [];

    const first = this.declared.length > 0 ? this.planFor([0]) : undefined;
    this.problems = first?.problems ?? [];
    this.encryptedPaths = first?.encryptedPaths ?? [];
    const matched = new Set<string>();
    for (const type of this.everyMessage()) {
      for (const path of selection.paths) {
        // (a type that does not resolve fails when a value names it; here it just matches nothing)
        if (!matched.has(path.text) && attempt(() => locate(type, path)) !== undefined) matched.add(path.text);
      }
    }
    this.matchedPaths = matched;
  }

  scanPlain(value: Uint8Array): PlainValue {
    const { frame, plan, message } = this.read(value);
    const subject = this.subjectOf(plan, message);
    const slots = this.slotsOf(plan, message);
    return {
      subject,
      fields: slots.map((slot) => ({ path: slot.path, plaintext: plaintextOf(slot) })),
      withSealed: (envelopes, pseudonym) => {
        if (pseudonym) this.setSubject(plan, message, subjectPseudonymText(pseudonym));
        else if (slots.length === 0) return bufferView(value); // nothing to seal: the value as it came, not re-encoded
        slots.forEach((slot, k) => {
          slot.holder[slot.key] = slot.field.bytes ? sealedFieldBytes(envelopes[k]) : sealedFieldText(envelopes[k]);
        });
        return this.write(plan, frame, message);
      },
    };
  }

  scanSealed(value: Uint8Array): SealedValue {
    const { frame, plan, message } = this.read(value);
    const subject = this.subjectOf(plan, message);
    const slots = this.slotsOf(plan, message);
    const fields = slots.map((slot) => {
      const current = slot.holder[slot.key];
      const envelope = slot.field.bytes ? envelopeOfFieldBytes(current as Uint8Array) : envelopeOfFieldText(current as string);
      return { path: slot.path, envelope };
    });
    return {
      subject,
      pseudonym: subject && pseudonymOfSubjectText(Buffer.from(subject).toString('utf8')),
      fields,
      withOpened: (opened: readonly (OpenedField | undefined)[], subjectId?: Uint8Array) => {
        let changed = false;
        if (subjectId) {
          this.setSubject(plan, message, Buffer.from(subjectId).toString('utf8'));
          changed = true;
        }
        slots.forEach((slot, k) => {
          const field = opened[k];
          if (fields[k].envelope === undefined || field === undefined) return; // never encrypted: as it is
          if (field === null) clear(slot);
          else slot.holder[slot.key] = slot.field.bytes ? bufferView(field) : decryptedText(field, `the decrypted string field ${slot.path.text} is not valid UTF-8`);
          changed = true;
        });
        return changed ? this.write(plan, frame, message) : bufferView(value);
      },
    };
  }

  private parse(text: string, root: Root, what: string): IParserResult {
    try {
      return protobuf.parse(text, root, { keepCase: true });
    } catch (err) {
      throw new RecordError(`schema id ${this.schemaId}: ${what} does not parse as a .proto file: ${reasonOf(err)}`);
    }
  }

  /** The references, then the file, in one Root; a well-known google/protobuf import not referenced comes from protobufjs' own copy. */
  private resolvingRoot(schema: ResolvedSchema): Root {
    const root = new protobuf.Root();
    const imports = new Set<string>();
    const noteImports = (parsed: IParserResult) => [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])].forEach((name) => imports.add(name));
    for (const reference of schema.referenced) noteImports(this.parse(reference.schema.schema, root, `its reference ${reference.name}`));
    noteImports(this.parse(schema.schema, root, 'its .proto text'));
    const referenced = new Set(schema.referenced.map((reference) => reference.name));
    for (const name of imports) {
      // Any other missing import (confluent/meta.proto for field options) only matters if a field's type is in it.
      const common = referenced.has(name) ? null : protobuf.common.get(name);
      if (!common?.nested) continue;
      try {
        root.addJSON(common.nested);
      } catch (err) {
        throw new RecordError(`schema id ${this.schemaId}: the well-known types of ${name} clash with its declarations: ${reasonOf(err)}`);
      }
    }
    return root;
  }

  /** The message a value's indexes name, compiled; RecordError when there is none or it does not compile. */
  private planFor(indexes: readonly number[]): MessagePlan {
    const key = indexes.join(',');
    let plan = this.plans.get(key);
    if (plan) return plan;
    let candidates = this.declared;
    let declared: Type | undefined;
    for (const index of indexes) {
      declared = candidates[index] as Type | undefined;
      if (!declared) break;
      candidates = messagesIn(declared);
    }
    if (!declared) throw new RecordError(`message indexes [${indexes.join(', ')}] name no message of schema id ${this.schemaId}`);
    try {
      plan = this.compilePlan(this.root.lookupType(declared.fullName));
    } catch (err) {
      if (err instanceof RecordError) throw err;
      throw new RecordError(`schema id ${this.schemaId}: message ${fullName(declared)} does not compile: ${reasonOf(err)}`);
    }
    this.plans.set(key, plan);
    return plan;
  }

  private compilePlan(type: Type): MessagePlan {
    const name = fullName(type);
    const reachable = reachableTypes(type);
    const problems: string[] = [];
    const selection: MessageSelection = new Map();
    const configured: string[] = [];
    for (const path of this.selection.paths) {
      const located = locate(type, path);
      if (!located) continue;
      const { steps, owner } = located;
      const last = steps[steps.length - 1];
      const wholeList = (last.field.repeated || last.field.map) && last.element === undefined;
      if (wholeList && isStringOrBytes(last.field)) {
        problems.push(`${path.text} is ${describe(last.field)} field of message ${fullName(owner)}: name its elements to encrypt them, ${path.text}[*]`);
      } else if (wholeList || !isStringOrBytes(last.field)) {
        problems.push(`${path.text} is ${describe(last.field)} field of message ${fullName(owner)}: only string and bytes fields can be encrypted`);
      } else {
        select(selection, steps, path);
        if (!configured.includes(path.text)) configured.push(path.text);
      }
    }
    const tags = this.selection.tags.length > 0 ? tagGraph(reachable, new Set(this.selection.tags)) : undefined;
    if (this.selection.tags.length > 0) problems.push(...untypedTagProblems(reachable, new Set(this.selection.tags)));
    const subject = this.selection.subjectPath && this.compileSubject(type, this.selection.subjectPath, tags, problems);
    const tagged = tags ? taggedPaths(tags).filter((text) => !configured.includes(text)) : [];
    return { type, name, problems, selection, tags, subject, encryptedPaths: [...configured, ...tagged] };
  }

  /** The subject field's steps; a problem when no value of this type could give one. */
  private compileSubject(type: Type, path: JsonPath, tags: TagNode | undefined, problems: string[]): Step[] | undefined {
    const located = locate(type, path);
    const last = located?.steps[located.steps.length - 1];
    if (!located || !last || located.steps.some((step) => step.element === 'every')) {
      problems.push(`${path.text} (the subject field) names no field of message ${fullName(type)}`);
      return undefined;
    }
    const { field } = last;
    const single = !(field.repeated || field.map) || last.element !== undefined;
    if (!single || field.resolvedType || !(field.type === 'string' || INTEGER_TYPES.has(field.type))) {
      problems.push(`${path.text} (the subject field) is ${describe(field)} field of message ${fullName(located.owner)}: the subject must be a string or integer field`);
      return undefined;
    }
    let node = tags;
    for (const step of located.steps.slice(0, -1)) node = node?.below.get(step.field);
    if (node?.tagged.has(field)) {
      problems.push(`${path.text} (the subject field) is tagged ${fieldTags(field).join(', ')} and would be encrypted: the subject must stay readable`);
    }
    return located.steps;
  }

  /** Frame, message plan and decoded message of a value; RecordError for anything a value can get wrong. */
  private read(value: Uint8Array): { frame: ProtobufRegistryFrame; plan: MessagePlan; message: Holder } {
    const frame = parseProtobufFrame(value);
    const plan = this.planFor(frame.messageIndexes);
    if (plan.problems.length > 0) throw new RecordError(`schema id ${this.schemaId}, message ${plan.name}: ${plan.problems.join('; ')}`);
    try {
      const reader = protobuf.Reader.create(frame.payload);
      reader.discardUnknown = false;
      return { frame, plan, message: plan.type.decode(reader) as unknown as Holder };
    } catch (err) {
      throw new RecordError(`not Protobuf of schema id ${this.schemaId}: ${reasonOf(err)} (decoding message ${plan.name})`);
    }
  }

  private write(plan: MessagePlan, frame: ProtobufRegistryFrame, message: Holder): Buffer {
    let encoded: Uint8Array;
    try {
      encoded = plan.type.encode(message).finish();
    } catch (err) {
      throw new RecordError(`schema id ${this.schemaId}: message ${plan.name} cannot be written back: ${reasonOf(err)}`);
    }
    return reframe(frame, encoded);
  }

  /** Puts `text` in the subject field (a pseudonym, or the subject id it stands for): a string field only. */
  private setSubject(plan: MessagePlan, message: Holder, text: string): void {
    let holder: unknown = message;
    const steps = plan.subject ?? [];
    steps.forEach((step, i) => {
      if (i === steps.length - 1 || !isHolder(holder)) return;
      holder = holder[step.field.name];
      if (typeof step.element === 'number') holder = Array.isArray(holder) ? holder[step.element] : undefined;
    });
    const last = steps.at(-1);
    if (!last || !isHolder(holder) || typeof holder[last.field.name] !== 'string' || typeof last.element === 'number') {
      throw new RecordError(subjectNotStringReason(this.selection.subjectPath));
    }
    holder[last.field.name] = text;
  }

  private subjectOf(plan: MessagePlan, message: Holder): Uint8Array | undefined {
    const path = this.selection.subjectPath;
    if (!path) return undefined;
    let current: unknown = message;
    for (const step of plan.subject ?? []) {
      if (!isHolder(current) || !Object.hasOwn(current, step.field.name)) break;
      current = current[step.field.name];
      if (typeof step.element === 'number') current = Array.isArray(current) ? current[step.element] : undefined;
    }
    let text: string | undefined;
    if (typeof current === 'string') text = current;
    else if (typeof current === 'number' || isLong(current)) text = String(current); // (a Long's toString is its decimal text)
    if (!text) throw new RecordError(`no subject: ${path.text} is missing from the value`);
    return Buffer.from(text, 'utf8');
  }

  private slotsOf(plan: MessagePlan, message: Holder): Slot[] {
    const slots: Slot[] = [];
    this.collect(message, plan.type, [plan.selection], plan.tags, ROOT_PATH, 0, slots);
    return slots;
  }

  /** The selected fields present in `message`, in field declaration order, depth first. */
  private collect(message: Holder, type: Type, selections: MessageSelection[], tags: TagNode | undefined, at: JsonPath, depth: number, slots: Slot[]): void {
    for (const field of type.fieldsArray) {
      let chosen = NOTHING_CHOSEN;
      for (const selection of selections) {
        const choice = selection.get(field.name);
        if (choice) chosen = chosen === NOTHING_CHOSEN ? [choice] : [...chosen, choice];
      }
      const tagged = tags?.tagged.has(field) ?? false;
      const tagsBelow = tags?.below.get(field);
      if ((chosen.length === 0 && !tagged && !tagsBelow) || !Object.hasOwn(message, field.name)) continue;
      const value = message[field.name];
      const list = field.repeated || field.map;
      const tagPath = tagged || tagsBelow ? this.derivedPath(at, field.name, list) : undefined;
      const places: [Holder, string | number, readonly Selected[], boolean][] = [];
      if (!list) {
        places.push([message, field.name, chosen, false]);
      } else if (isHolder(value)) {
        const keys: (string | number)[] = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
        for (const key of keys) {
          const elements = chosen.flatMap((choice) => [choice.every, typeof key === 'number' ? choice.at?.get(key) : undefined]).filter(isDefined);
          places.push([value, key, elements, true]);
        }
      }
      for (const [holder, key, choices, element] of places) {
        const current = holder[key];
        if (isStringOrBytes(field)) {
          const path = choices.find((choice) => choice.leaf)?.leaf ?? (tagged ? tagPath : undefined);
          if (path && isPresent(current)) slots.push({ path, field, holder, key, element });
        } else if (isHolder(current) && field.resolvedType instanceof protobuf.Type) {
          const inner = choices.map((choice) => choice.message).filter(isDefined);
          if (tagsBelow && depth >= TAG_DEPTH_LIMIT) {
            throw new RecordError(`${tagPath!.text} is nested deeper than ${TAG_DEPTH_LIMIT} messages: fields tagged ${this.selection.tags.join(', ')} are not looked for that deep`);
          }
          if (inner.length > 0 || tagsBelow) this.collect(current, field.resolvedType, inner, tagsBelow, tagPath ?? at, depth + 1, slots);
        }
      }
    }
  }

  /** The path of a field found by its tag: one object per text while there are not too many. */
  private derivedPath(parent: JsonPath, name: string, list: boolean): JsonPath {
    const text = `${parent.text}.${name}${list ? '[*]' : ''}`;
    let path = this.paths.get(text);
    if (path) return path;
    const segments: PathSegment[] = list ? [...parent.segments, { name }, { wildcard: true }] : [...parent.segments, { name }];
    path = { text, segments };
    if (this.paths.size < DERIVED_PATHS_KEPT) this.paths.set(text, path);
    return path;
  }

  /** Every message type of the registered file, nested ones too, in the resolving root. */
  private everyMessage(): Type[] {
    const found: Type[] = [];
    const visit = (types: Type[]) => types.forEach((declared) => {
      const type = attempt(() => this.root.lookupType(declared.fullName));
      if (type) found.push(type);
      visit(messagesIn(declared));
    });
    visit(this.declared);
    return found;
  }
}

/** The message types declared directly in a namespace or message, in declaration order. */
function messagesIn(namespace: Namespace): Type[] {
  return namespace.nestedArray.filter((nested): nested is Type => nested instanceof protobuf.Type);
}

/** The steps a path takes from `type` to a field, and the message declaring that field; undefined when it names none. */
function locate(type: Type, path: JsonPath): { steps: Step[]; owner: Type } | undefined {
  const steps: Step[] = [];
  const segments = path.segments;
  let current: Type | undefined = type;
  let owner = type;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (!current || !('name' in segment) || !Object.hasOwn(current.fields, segment.name)) return undefined;
    const field = current.fields[segment.name].resolve();
    owner = current;
    const step: Step = { field };
    const next = segments[i + 1] as PathSegment | undefined;
    if ((field.repeated || field.map) && next && !('name' in next)) {
      if ('index' in next && field.map) return undefined; // (map values are reached by [*] only)
      step.element = 'index' in next ? next.index : 'every';
      i++;
    } else if ((field.repeated || field.map) && next) {
      return undefined; // a name does not go through a list
    }
    steps.push(step);
    current = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
  }
  return { steps, owner };
}

/** Records a configured path's leaf in the selection tree; the first path to reach a place keeps it. */
function select(selection: MessageSelection, steps: Step[], path: JsonPath): void {
  let level = selection;
  steps.forEach((step, i) => {
    let fieldSelection = level.get(step.field.name);
    if (!fieldSelection) level.set(step.field.name, (fieldSelection = {}));
    let place: Selected = fieldSelection;
    if (step.element === 'every') {
      place = fieldSelection.every ??= {};
    } else if (step.element !== undefined) {
      const at = (fieldSelection.at ??= new Map());
      if (!at.has(step.element)) at.set(step.element, {});
      place = at.get(step.element)!;
    }
    if (i === steps.length - 1) place.leaf ??= path;
    else level = place.message ??= new Map();
  });
}

/**
 * `type` and every message type its fields lead to, each field resolved: a type missing from the
 * schema and its references is the schema's fault, found here rather than blamed on a value.
 */
function reachableTypes(type: Type): Type[] {
  const found = new Set<Type>();
  const pending = [type];
  while (pending.length > 0) {
    const next = pending.shift()!;
    if (found.has(next)) continue;
    found.add(next);
    for (const field of next.fieldsArray) {
      const resolved = field.resolve().resolvedType;
      if (resolved instanceof protobuf.Type) pending.push(resolved);
    }
  }
  return [...found];
}

/** The tagged string and bytes fields reachable from the first of `reachable` (reachableTypes); undefined when there are none. */
function tagGraph(reachable: readonly Type[], tags: ReadonlySet<string>): TagNode | undefined {
  const nodes = new Map<Type, TagNode>();
  for (const message of reachable) {
    const tagged = message.fieldsArray.filter((field) => isStringOrBytes(field) && fieldTags(field).some((tag) => tags.has(tag)));
    nodes.set(message, { tagged: new Set(tagged), below: new Map() });
  }
  // Only message fields leading to a tagged field are followed: grown to a fixed point, as types may recurse.
  const leading = new Set([...nodes].filter(([, node]) => node.tagged.size > 0).map(([message]) => message));
  let grew = true;
  while (grew) {
    grew = false;
    for (const message of nodes.keys()) {
      if (!leading.has(message) && message.fieldsArray.some((field) => leading.has(field.resolvedType as Type))) {
        leading.add(message);
        grew = true;
      }
    }
  }
  for (const [message, node] of nodes) {
    for (const field of message.fieldsArray) {
      if (leading.has(field.resolvedType as Type)) node.below.set(field, nodes.get(field.resolvedType as Type)!);
    }
  }
  return leading.has(reachable[0]) ? nodes.get(reachable[0]) : undefined;
}

/** A tagged field that is not string or bytes would stay in clear: a problem (as CSFLE refuses it), not a silent skip. */
function untypedTagProblems(reachable: readonly Type[], tags: ReadonlySet<string>): string[] {
  return reachable.flatMap((message) =>
    message.fieldsArray
      .filter((field) => !isStringOrBytes(field) && fieldTags(field).some((tag) => tags.has(tag)))
      .map((field) => `field ${field.name} of message ${fullName(message)} is tagged ${fieldTags(field).join(', ')} but is ${describe(field)} field: only string and bytes fields can be encrypted`),
  );
}

/** The paths of tagged fields, for encryptedPaths: a recursive type's fields listed at their first depth only. */
function taggedPaths(root: TagNode): string[] {
  const texts: string[] = [];
  const visit = (node: TagNode, prefix: string, open: Set<TagNode>) => {
    for (const field of node.tagged) texts.push(`${prefix}.${field.name}${field.repeated || field.map ? '[*]' : ''}`);
    for (const [field, below] of node.below) {
      if (open.has(below)) continue;
      visit(below, `${prefix}.${field.name}${field.repeated || field.map ? '[*]' : ''}`, new Set([...open, below]));
    }
  };
  visit(root, '$', new Set([root]));
  return [...new Set(texts)];
}

/**
 * A field's `(confluent.field_meta).tags`. protobufjs keeps every option in parsedOptions, one object
 * per option statement, whichever form it was written in (`(confluent.field_meta).tags = "PII"` or
 * `(confluent.field_meta) = { tags: ["PII"] }`); its flat `options` keep only the last of repeated tags.
 */
function fieldTags(field: Field): string[] {
  const tags: string[] = [];
  const add = (value: unknown) => {
    for (const tag of Array.isArray(value) ? value : [value]) if (typeof tag === 'string') tags.push(tag);
  };
  for (const option of field.parsedOptions ?? []) {
    for (const [name, value] of Object.entries(option)) {
      const bare = name.replace('(.', '(');
      if (bare === '(confluent.field_meta)' && typeof value === 'object' && value !== null) add((value as { tags?: unknown }).tags);
      else if (bare === '(confluent.field_meta).tags') add(value);
    }
  }
  add(field.options?.['(confluent.field_meta).tags']);
  return [...new Set(tags)];
}

function isStringOrBytes(field: Field): boolean {
  return !field.resolvedType && (field.type === 'string' || field.type === 'bytes');
}

/** "a string", "an int32", "a message shop.Address", "a repeated string", "a map<string, int32>". */
function describe(field: Field): string {
  const resolved = field.resolvedType;
  const valueType = resolved ? `${resolved instanceof protobuf.Type ? 'message' : 'enum'} ${fullName(resolved)}` : field.type;
  const keyType = (field as Field & { keyType?: string }).keyType;
  const kind = field.map ? `map<${keyType}, ${valueType}>` : field.repeated ? `repeated ${valueType}` : valueType;
  return `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}`;
}

function fullName(object: { fullName: string }): string {
  return object.fullName.replace(/^\./, '');
}

function isHolder(value: unknown): value is Holder {
  return typeof value === 'object' && value !== null && !(value instanceof Uint8Array);
}

/** A 64-bit integer as protobufjs decodes it: a `long` Long (duck-typed: protobufjs loads its own copy of the package). */
function isLong(value: unknown): boolean {
  return isHolder(value) && typeof value.low === 'number' && typeof value.high === 'number' && typeof value.unsigned === 'boolean';
}

function isDefined<T>(value: T | undefined): value is T {
  return value !== undefined;
}

/** A selected field is there to seal when it holds something: an empty string or bytes is left as it is. */
function isPresent(value: unknown): boolean {
  return (typeof value === 'string' || value instanceof Uint8Array) && value.length > 0;
}

function plaintextOf(slot: Slot): Buffer {
  const value = slot.holder[slot.key] as string | Uint8Array;
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : bufferView(value);
}

function clear(slot: Slot): void {
  if (slot.element || slot.field.required) slot.holder[slot.key] = slot.field.bytes ? Buffer.alloc(0) : '';
  else delete slot.holder[slot.key];
}

/** `run()`, or undefined when it throws: for lookups whose failure surfaces elsewhere. */
function attempt<T>(run: () => T): T | undefined {
  try {
    return run();
  } catch {
    return undefined; // (the caller says where the failure surfaces)
  }
}

function reasonOf(err: unknown): string {
  const reason = messageOf(err);
  return reason.length > REASON_CHARS ? `${reason.slice(0, REASON_CHARS)}...` : reason;
}
