// A small client of the Confluent Schema Registry REST API (also served by Apicurio's ccompat API,
// Karapace, Redpanda): just the reads the registry formats need, with basic auth and TLS from files.
//
// Why not @kafkajs/confluent-schema-registry or @confluentinc/schemaregistry: both are serdes, and we
// need the schema text only (avsc/protobufjs parse it where the formats live); the first takes no TLS
// client certificate and retries 4xx alike; the second brings axios, the CSFLE rule executors and
// their KMS SDKs. Neither would let us map the registry's answers onto our error taxonomy (a record
// naming a schema that does not exist is the record's fault; a registry that is down never is).
//
// Errors: connection failures, timeouts, 429 and 5xx are retried with back-off for a bounded time
// (`retryForMs`), then a TransientError('schema-registry') naming the URL; 401/403 and a 404 that is not
// the registry's own "schema not found" (a wrong URL) are TransientErrors at once; the registry's 40403
// for an unknown id is a RecordError. Credentials never appear in a message.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { RecordError, TransientError } from '../errors/shredder-errors.js';

export type SchemaType = 'AVRO' | 'PROTOBUF' | 'JSON';
const SCHEMA_TYPES: readonly string[] = ['AVRO', 'PROTOBUF', 'JSON'];

/** A schema another one imports (a Protobuf import, an Avro named type, a JSON Schema $ref). */
export interface SchemaReference {
  name: string;
  subject: string;
  version: number;
}

export interface RegistrySchema {
  id: number;
  schemaType: SchemaType;
  /** The schema text as registered (Avro JSON, a .proto file, a JSON Schema document). */
  schema: string;
  references: SchemaReference[];
}

export interface SubjectSchema extends RegistrySchema {
  subject: string;
  version: number;
}

export interface SchemaRegistryConnection {
  /** Base URL of the Confluent-compatible API, e.g. https://registry:8081 or http://host/apis/ccompat/v7. */
  url: string;
  username?: string;
  password?: string;
  /** PEM CA bundle (instead of the system's CAs) and client certificate with its key. */
  tls?: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string };
}

export interface SchemaRegistryClientOptions {
  /** How long connection failures and 5xx are retried before a TransientError. Default 5 s. */
  retryForMs?: number;
  /** First back-off, doubled after each failure up to `maxBackoffMs`. Default 100 ms. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** One request's time limit (cut to what is left of `retryForMs`). Default 3 s. */
  requestTimeoutMs?: number;
}

/** An answer that came: status and body. */
interface Answer {
  status: number;
  body: string;
}

/** Node's and OpenSSL's codes of a certificate or TLS failure: another try would fail alike. */
const TLS_VERIFY = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME/;

class Unanswered extends Error {
  constructor(message: string, readonly retriable: boolean, options?: ErrorOptions) {
    super(message, options);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SchemaRegistryClient {
  private readonly base: URL;
  /** The URL as messages show it: no credentials, query or fragment. */
  readonly displayUrl: string;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly authorization?: string;
  // Ids are immutable, so a schema once read is good for the life of the process. Only schemas the
  // registry has are cached, so records naming made-up ids cannot grow this. In-flight reads are shared.
  private readonly byId = new Map<number, Promise<RegistrySchema>>();
  private readonly retryForMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly requestTimeoutMs: number;
  /** HTTP requests sent (every attempt), for tests and metrics. */
  requests = 0;

  constructor(connection: SchemaRegistryConnection, options: SchemaRegistryClientOptions = {}) {
    this.base = new URL(connection.url.endsWith('/') ? connection.url : `${connection.url}/`);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new TypeError('the schema registry URL must be http: or https:');
    this.displayUrl = `${this.base.origin}${this.base.pathname.replace(/\/$/, '')}`;
    if (connection.username !== undefined || connection.password !== undefined) {
      this.authorization = `Basic ${Buffer.from(`${connection.username ?? ''}:${connection.password ?? ''}`, 'utf8').toString('base64')}`;
    }
    this.agent = this.base.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, ...connection.tls }) : new HttpAgent({ keepAlive: true });
    this.retryForMs = options.retryForMs ?? 5000;
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 1000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 3000;
  }

  /** The schema of a registry-framed record's id; a RecordError when the registry has no such id. */
  schemaById(id: number): Promise<RegistrySchema> {
    if (!Number.isSafeInteger(id) || id < 0) return Promise.reject(new RecordError(`schema id ${id} is not a valid schema id`));
    let schema = this.byId.get(id);
    if (!schema) {
      schema = this.fetchSchema(id);
      this.byId.set(id, schema);
      schema.catch(() => this.byId.delete(id)); // (failures are not cached: the caller sees this same promise)
    }
    return schema;
  }

  /** The newest version registered under `subject`, or undefined when the subject does not exist (never cached). */
  latestForSubject(subject: string): Promise<SubjectSchema | undefined> {
    return this.subjectSchema(subject, 'latest');
  }

  private async subjectSchema(subject: string, version: string): Promise<SubjectSchema | undefined> {
    const answer = await this.get(`subjects/${encodeURIComponent(subject)}/versions/${version}`);
    const code = errorCodeOf(answer);
    if (answer.status === 404 && (code === 40401 || code === 40402)) return undefined;
    this.expectOk(answer, `version ${version} of subject ${JSON.stringify(subject)}`);
    const body = this.json(answer) as { subject?: unknown; version?: unknown; id?: unknown };
    if (typeof body.id !== 'number' || typeof body.version !== 'number') throw this.fault(`its answer for subject ${JSON.stringify(subject)} has no id or version`);
    const schema = this.schemaOf(body, body.id);
    return { ...schema, subject: typeof body.subject === 'string' ? body.subject : subject, version: body.version };
  }

  /** A version of a subject (what a schema reference names), or undefined when the registry does not have it. */
  async subjectVersion(subject: string, version: number): Promise<SubjectSchema | undefined> {
    return this.subjectSchema(subject, String(version));
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private async fetchSchema(id: number): Promise<RegistrySchema> {
    const answer = await this.get(`schemas/ids/${id}`);
    // Only the registry's own "schema not found" is the record's fault: a bare 404 is a URL that is not
    // the registry's API, and dead-lettering every record for it would lose them all.
    if (answer.status === 404 && errorCodeOf(answer) === 40403) throw new RecordError(`schema id ${id} is not in the schema registry`);
    this.expectOk(answer, `schema id ${id}`);
    return this.schemaOf(this.json(answer), id);
  }

  private schemaOf(body: unknown, id: number): RegistrySchema {
    const { schema, schemaType, references } = body as { schema?: unknown; schemaType?: unknown; references?: unknown };
    if (typeof schema !== 'string') throw this.fault(`its answer for schema id ${id} has no schema text`);
    // (the Confluent API leaves schemaType out for Avro, its first format)
    const type = schemaType ?? 'AVRO';
    if (typeof type !== 'string' || !SCHEMA_TYPES.includes(type)) {
      throw new RecordError(`schema id ${id} is of type ${JSON.stringify(type)}, not AVRO, PROTOBUF or JSON`);
    }
    const refs = Array.isArray(references) ? references : [];
    return {
      id,
      schemaType: type as SchemaType,
      schema,
      references: refs.map((r: { name?: unknown; subject?: unknown; version?: unknown }) => ({
        name: String(r.name),
        subject: String(r.subject),
        version: Number(r.version),
      })),
    };
  }

  private json(answer: Answer): unknown {
    try {
      return JSON.parse(answer.body);
    } catch (err) {
      throw this.fault(`its answer (HTTP ${answer.status}) is not JSON`, err);
    }
  }

  private expectOk(answer: Answer, what: string): void {
    if (answer.status >= 200 && answer.status < 300) return;
    if (answer.status === 401 || answer.status === 403) {
      throw this.fault(`it refused the credentials reading ${what} (HTTP ${answer.status}): check SHREDDER_SCHEMA_REGISTRY_USERNAME and its password`);
    }
    if (answer.status === 404) {
      throw this.fault(`it answered 404 for ${what} without a registry error code: is SHREDDER_SCHEMA_REGISTRY_URL the base of a Confluent-compatible API?`);
    }
    throw this.fault(`it answered HTTP ${answer.status} for ${what}${registryMessage(answer)}`);
  }

  private fault(problem: string, cause?: unknown): TransientError {
    return new TransientError('schema-registry', `schema registry at ${this.displayUrl}: ${problem}`, cause === undefined ? undefined : { cause });
  }

  /** GET with bounded retries of connection failures, timeouts, 429 and 5xx. */
  private async get(path: string): Promise<Answer> {
    const deadline = Date.now() + this.retryForMs;
    let backoff = this.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      const timeout = Math.max(100, Math.min(this.requestTimeoutMs, deadline - Date.now()));
      let failure: string;
      let cause: unknown;
      try {
        const answer = await this.send(path, timeout);
        if (answer.status < 500 && answer.status !== 429) return answer;
        failure = `it answered HTTP ${answer.status}${registryMessage(answer)}`;
      } catch (err) {
        if (!(err instanceof Unanswered)) throw err;
        if (!err.retriable) throw this.fault(err.message, err.cause);
        failure = err.message;
        cause = err.cause;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw this.fault(`${failure} (${attempt} attempt${attempt === 1 ? '' : 's'} in ${this.retryForMs} ms)`, cause);
      await sleep(Math.min(backoff, remaining)); // (a last attempt at the deadline)
      backoff = Math.min(backoff * 2, this.maxBackoffMs);
    }
  }

  private send(path: string, timeoutMs: number): Promise<Answer> {
    const url = new URL(path, this.base);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    this.requests++;
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method: 'GET',
        agent: this.agent,
        headers: {
          accept: 'application/vnd.schemaregistry.v1+json, application/json',
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
        timeout: timeoutMs,
      }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => reject(new Unanswered(`its answer broke off (${codeOf(err)})`, true, { cause: err })));
      });
      req.on('timeout', () => req.destroy(new Unanswered(`no answer within ${timeoutMs} ms`, true)));
      req.on('error', (err) => {
        if (err instanceof Unanswered) reject(err);
        else if (TLS_VERIFY.test(codeOf(err))) {
          // (retrying cannot fix a certificate: say which variable to check, at once)
          reject(new Unanswered(`TLS failed (${codeOf(err)}): check SHREDDER_SCHEMA_REGISTRY_CA_FILE, _CERT_FILE and _KEY_FILE`, false, { cause: err }));
        } else reject(new Unanswered(`cannot connect (${codeOf(err)})`, true, { cause: err }));
      });
      req.end();
    });
  }
}

function codeOf(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

function errorCodeOf(answer: Answer): number | undefined {
  try {
    const code = (JSON.parse(answer.body) as { error_code?: unknown }).error_code;
    return typeof code === 'number' ? code : undefined;
  } catch {
    return undefined; // (not the registry's JSON error body)
  }
}

/** The registry's own error code and message, when it gave them (they name schemas, never credentials). */
function registryMessage(answer: Answer): string {
  const code = errorCodeOf(answer);
  if (code === undefined) return '';
  const message = (JSON.parse(answer.body) as { message?: unknown }).message;
  return `, error ${code}${typeof message === 'string' ? `: ${message.slice(0, 200)}` : ''}`;
}
