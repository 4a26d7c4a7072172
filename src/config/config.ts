// Configuration from environment variables only (contract: "Configuration"), validated at start:
// every problem is collected and reported at once, by variable name; secrets are never echoed.
import { ConfigurationError } from '../errors/shredder-errors.js';
import { readFileSync } from 'node:fs';
import { algorithmId, type AlgorithmId } from '../crypto/aead-algorithms.js';
import { parseJsonPath, pathCovers, type JsonPath } from '../fields/json-path.js';
import { keyBytes, parseKeyProvider, valueOrFile, type KeyProviderConfig, type VariableReader } from './key-provider-config.js';
import { parseSchemaRegistry, type SchemaRegistryConfig } from './schema-registry-config.js';
import { unknownVariableProblems } from './unknown-variables.js';
import { defaultOf, VARIABLES, type CommandName } from './variables.js';

export interface Route {
  from: string;
  to: string;
}

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';
export type OnShredded = 'marker' | 'skip' | 'dlq';
export type ErrorsTolerance = 'all' | 'none';
export const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type CompressionName = (typeof COMPRESSIONS)[number];

/** TLS material read from KAFKA_SSL_*_FILE (PEM). */
export interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  ssl: boolean;
  /** With ssl: CA bundle and client certificate instead of the system's CAs and no client certificate. */
  tls?: TlsFiles;
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
}

export const RECORD_KEYS = ['subject', 'pseudonym'] as const;
export type RecordKeys = (typeof RECORD_KEYS)[number];

export interface ShredderConfig {
  command: CommandName;
  kafka: KafkaConnection;
  routes: Route[];
  keysTopic: string;
  /** reencrypt: the old keyspace's keys topic. */
  sourceKeysTopic?: string;
  dlqTopic: string;
  /** The erasure audit trail (encrypt writes it, verify-erasure reads it). */
  auditTopic: string;
  /** Keys the audit trail's subject references; undefined: derived from the current master key. */
  auditKey?: Uint8Array;
  groupId: string;
  /** Where the master keys are, and which one wraps new keys. */
  keys: KeyProviderConfig;
  /** After a change of the current master key, how many keys a second the encryptor re-wraps. */
  rewrapKeysPerSecond: number;
  stateDir: string;
  /** Subjects whose keys each partition keeps in memory at most (PartitionKeys' cache, the encryptor's ready table). */
  keyCacheSubjects: number;
  algorithm: AlgorithmId;
  /** SHREDDER_RECORD_KEYS: what the encryptor keys its output records and key records by. */
  recordKeys: RecordKeys;
  fields?: string[];
  /** Field mode with a schema registry: fields chosen by these schema tags (SHREDDER_FIELD_TAGS). */
  fieldTags?: string[];
  subjectField?: string;
  /** Field mode, decrypt: the JSON text a shredded field becomes. */
  shreddedFieldValue: string;
  /** The Confluent-compatible schema registry (SHREDDER_SCHEMA_REGISTRY_*), when one is configured. */
  schemaRegistry?: SchemaRegistryConfig;
  erasureDeadlineMs: number;
  plaintextRetentionMs: number;
  onShredded: OnShredded;
  /** all: bad records are dead-lettered and processing goes on; none: the first one stops the processor. */
  errorsTolerance: ErrorsTolerance;
  /** Compression of the plaintext records the decryptor writes. */
  outputCompression: CompressionName;
  /** See StreamProcessorOptions.taskOpenTimeoutMs. */
  taskOpenTimeoutMs: number;
  httpPort: number;
  logLevel: string;
}

export class ConfigError extends ConfigurationError {
  override readonly name: string = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface LoadOptions {
  /** Variables the caller provides itself (the demo's brokers and master key). */
  skipRequired?: string[];
}

export function loadConfig(command: CommandName, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): ShredderConfig {
  const problems: string[] = [];
  const raw = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const value = (name: string): string => {
    const spec = VARIABLES.find((v) => v.name === name);
    return raw(name) ?? (spec ? defaultOf(spec, command) : undefined) ?? '';
  };
  const integer = (name: string, min: number, max: number): number => {
    const text = value(name);
    const parsed = /^-?\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
      return min;
    }
    return parsed;
  };
  const topic = (name: string): string => {
    const text = value(name);
    if (!TOPIC.test(text)) problems.push(`${name}: ${JSON.stringify(text)} is not a valid Kafka topic name`);
    return text;
  };
  const skip = new Set(options.skipRequired ?? []);
  /** A file's contents (a secret's: never echoed), or undefined with a problem naming the variable. */
  const readVariableFile = (name: string, path: string): Buffer | undefined => {
    try {
      return readFileSync(path);
    } catch (err) {
      problems.push(`${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      return undefined;
    }
  };
  problems.push(...unknownVariableProblems(env));
  /** What the key and secret parsers read variables with (key-provider-config.ts). */
  const secrets: VariableReader = { raw, value, integer, readFile: readVariableFile, problems };

  // Kafka connection
  const brokersText = raw('KAFKA_BROKERS');
  const brokers = (brokersText ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  if (!brokersText && !skip.has('KAFKA_BROKERS')) problems.push('KAFKA_BROKERS: required, a comma-separated host:port list');
  for (const broker of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker)) problems.push(`KAFKA_BROKERS: ${JSON.stringify(broker)} is not host:port`);
  }
  const sslText = value('KAFKA_SSL').toLowerCase();
  if (!['true', 'false'].includes(sslText)) problems.push(`KAFKA_SSL: expected true or false, got ${JSON.stringify(sslText)}`);
  const ssl = sslText === 'true';
  let tls: TlsFiles | undefined;
  for (const [name, field] of [['KAFKA_SSL_CA_FILE', 'ca'], ['KAFKA_SSL_CERT_FILE', 'cert'], ['KAFKA_SSL_KEY_FILE', 'key']] as const) {
    const path = raw(name);
    if (path === undefined) continue;
    if (!ssl) problems.push(`${name}: set, but KAFKA_SSL is not true (TLS files are used only with KAFKA_SSL=true)`);
    const contents = readVariableFile(name, path);
    if (contents === undefined) continue;
    if (!/-----BEGIN [A-Z ]+-----/.test(contents.toString('latin1'))) problems.push(`${name}: ${path} is not a PEM file (no -----BEGIN ...----- line)`);
    (tls ??= {})[field] = contents;
  }
  if (raw('KAFKA_SSL_CERT_FILE') !== undefined && raw('KAFKA_SSL_KEY_FILE') === undefined) problems.push('KAFKA_SSL_KEY_FILE: required with KAFKA_SSL_CERT_FILE (the client certificate\'s private key)');
  if (raw('KAFKA_SSL_KEY_FILE') !== undefined && raw('KAFKA_SSL_CERT_FILE') === undefined) problems.push('KAFKA_SSL_CERT_FILE: required with KAFKA_SSL_KEY_FILE (the client certificate)');
  let sasl: KafkaConnection['sasl'];
  const mechanism = raw('KAFKA_SASL_MECHANISM')?.toLowerCase();
  const passwordFile = raw('KAFKA_SASL_PASSWORD_FILE');
  if (passwordFile !== undefined && env.KAFKA_SASL_PASSWORD) problems.push('KAFKA_SASL_PASSWORD, KAFKA_SASL_PASSWORD_FILE: set one of them, not both');
  if (mechanism !== undefined) {
    if (!['plain', 'scram-sha-256', 'scram-sha-512'].includes(mechanism)) {
      problems.push(`KAFKA_SASL_MECHANISM: expected plain, scram-sha-256 or scram-sha-512, got ${JSON.stringify(mechanism)}`);
    }
    const username = raw('KAFKA_SASL_USERNAME');
    // (a password file's trailing newline is not part of the password, as with the master key's file)
    const password = passwordFile !== undefined ? readVariableFile('KAFKA_SASL_PASSWORD_FILE', passwordFile)?.toString('utf8').replace(/\r?\n$/, '') : env.KAFKA_SASL_PASSWORD;
    if (!username) problems.push('KAFKA_SASL_USERNAME: required when KAFKA_SASL_MECHANISM is set');
    if (!password && !(passwordFile !== undefined && problems.some((p) => p.startsWith('KAFKA_SASL_PASSWORD_FILE')))) {
      problems.push('KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE: required when KAFKA_SASL_MECHANISM is set');
    }
    sasl = { mechanism: mechanism as SaslMechanism, username: username ?? '', password: password ?? '' };
  } else if (passwordFile !== undefined || raw('KAFKA_SASL_USERNAME') !== undefined || raw('KAFKA_SASL_PASSWORD') !== undefined) {
    problems.push('KAFKA_SASL_MECHANISM: required when KAFKA_SASL_USERNAME or a SASL password is set (plain, scram-sha-256 or scram-sha-512)');
  }

  // Routes
  const routes: Route[] = [];
  for (const pair of value('SHREDDER_ROUTES').split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^([^\s>-][^\s>]*?)\s*->\s*(\S+)$/.exec(pair);
    if (!match || !TOPIC.test(match[1]) || !TOPIC.test(match[2])) {
      problems.push(`SHREDDER_ROUTES: ${JSON.stringify(pair)} is not a from->to pair of topic names`);
      continue;
    }
    routes.push({ from: match[1], to: match[2] });
  }
  // (`keys status` and `verify-erasure` read the keys topic, not the routes)
  if (routes.length === 0 && command !== 'keys' && command !== 'verify-erasure' && !problems.some((p) => p.startsWith('SHREDDER_ROUTES'))) {
    problems.push('SHREDDER_ROUTES: at least one from->to pair is required');
  }
  const froms = routes.map((r) => r.from);
  const tos = routes.map((r) => r.to);
  if (new Set(froms).size !== froms.length) problems.push('SHREDDER_ROUTES: a from topic appears twice');
  if (new Set(tos).size !== tos.length) problems.push('SHREDDER_ROUTES: a to topic appears twice');
  if (froms.some((f) => tos.includes(f))) problems.push('SHREDDER_ROUTES: a topic is both a from and a to topic');

  const keysTopic = topic('SHREDDER_KEYS_TOPIC');
  const dlqTopic = topic('SHREDDER_DLQ_TOPIC');
  const auditTopic = topic('SHREDDER_AUDIT_TOPIC');
  const sourceKeysTopic = raw('SHREDDER_SOURCE_KEYS_TOPIC');
  if (command === 'reencrypt') {
    if (sourceKeysTopic === undefined) problems.push('SHREDDER_SOURCE_KEYS_TOPIC: required by reencrypt, the keys topic of the encrypted topics to migrate');
    else if (!TOPIC.test(sourceKeysTopic)) problems.push(`SHREDDER_SOURCE_KEYS_TOPIC: ${JSON.stringify(sourceKeysTopic)} is not a valid Kafka topic name`);
    else if (sourceKeysTopic === keysTopic) problems.push('SHREDDER_SOURCE_KEYS_TOPIC: must differ from SHREDDER_KEYS_TOPIC (the new keyspace gets a keys topic of its own)');
    else if ([...froms, ...tos, dlqTopic].includes(sourceKeysTopic)) problems.push('SHREDDER_SOURCE_KEYS_TOPIC: must not be a route or dead letter topic');
  } else if (sourceKeysTopic !== undefined) {
    problems.push('SHREDDER_SOURCE_KEYS_TOPIC: used only by reencrypt');
  }
  if ([...froms, ...tos, keysTopic, dlqTopic].includes(auditTopic)) problems.push('SHREDDER_AUDIT_TOPIC: must not be a route, keys or dead letter topic');
  const auditKeyText = valueOrFile(secrets, 'SHREDDER_AUDIT_KEY');
  const auditKey =
    auditKeyText === undefined ? undefined : keyBytes(raw('SHREDDER_AUDIT_KEY_FILE') !== undefined ? 'SHREDDER_AUDIT_KEY_FILE' : 'SHREDDER_AUDIT_KEY', auditKeyText, problems);
  if ([...froms, ...tos].includes(keysTopic)) problems.push('SHREDDER_KEYS_TOPIC: must not be a route topic');
  if ([...froms, ...tos, keysTopic].includes(dlqTopic)) problems.push('SHREDDER_DLQ_TOPIC: must not be a route or keys topic');
  const groupId = value('SHREDDER_GROUP_ID');
  if (command !== 'forget' && command !== 'keys' && command !== 'export' && !groupId) problems.push('SHREDDER_GROUP_ID: must not be empty');

  // Master keys
  const keys = parseKeyProvider(
    secrets,
    (command === 'encrypt' || command === 'decrypt' || command === 'reencrypt' || command === 'export') && !skip.has('SHREDDER_MASTER_KEY'),
  );
  const rewrapKeysPerSecond = integer('SHREDDER_REWRAP_KEYS_PER_SECOND', 1, 1_000_000);

  const recordKeys = value('SHREDDER_RECORD_KEYS').toLowerCase() as RecordKeys;
  if (!RECORD_KEYS.includes(recordKeys)) problems.push(`SHREDDER_RECORD_KEYS: expected subject or pseudonym, got ${JSON.stringify(recordKeys)}`);
  let algorithm: AlgorithmId = 1;
  try {
    algorithm = algorithmId(value('SHREDDER_ALGORITHM'));
  } catch {
    problems.push(`SHREDDER_ALGORITHM: expected chacha20-poly1305 or aes-256-gcm, got ${JSON.stringify(value('SHREDDER_ALGORITHM'))}`);
  }
  const fields = raw('SHREDDER_FIELDS')?.split(',').map((f) => f.trim()).filter(Boolean);
  const fieldPaths: JsonPath[] = [];
  for (const field of fields ?? []) {
    try {
      fieldPaths.push(parseJsonPath(field));
    } catch {
      problems.push(`SHREDDER_FIELDS: ${JSON.stringify(field)} is not a JSON path like $.email, $.address.street or $.phones[*]`);
    }
  }
  const fieldTags = raw('SHREDDER_FIELD_TAGS')?.split(',').map((t) => t.trim()).filter(Boolean);
  if (fieldTags?.length && raw('SHREDDER_SCHEMA_REGISTRY_URL') === undefined) {
    problems.push('SHREDDER_FIELD_TAGS: schema tags need a schema registry (SHREDDER_SCHEMA_REGISTRY_URL); for JSON values use SHREDDER_FIELDS');
  }
  const subjectField = raw('SHREDDER_SUBJECT_FIELD');
  if (subjectField) {
    let subjectPath: JsonPath | undefined;
    try {
      subjectPath = parseJsonPath(subjectField);
    } catch {
      problems.push(`SHREDDER_SUBJECT_FIELD: ${JSON.stringify(subjectField)} is not a JSON path like $.userId`);
    }
    if (subjectPath?.segments.some((s) => 'wildcard' in s)) problems.push('SHREDDER_SUBJECT_FIELD: must name one field, without [*]');
    if (!fields?.length && !fieldTags?.length) {
      problems.push('SHREDDER_SUBJECT_FIELD: needs SHREDDER_FIELDS or SHREDDER_FIELD_TAGS (the decryptor reads the subject from the value, so the value cannot be encrypted whole)');
    }
    const covering = subjectPath && fieldPaths.find((p) => pathCovers(p, subjectPath));
    if (covering) problems.push(`SHREDDER_SUBJECT_FIELD: ${subjectField} is inside the encrypted field ${covering.text}; the subject must stay readable`);
  }
  const shreddedFieldValue = value('SHREDDER_SHREDDED_FIELD_VALUE');
  try {
    JSON.parse(shreddedFieldValue);
  } catch {
    problems.push(`SHREDDER_SHREDDED_FIELD_VALUE: expected JSON text (null, "", 0, ...), got ${JSON.stringify(shreddedFieldValue)}`);
  }

  const schemaRegistry = parseSchemaRegistry(secrets, env);

  const onShredded = value('SHREDDER_ON_SHREDDED') as OnShredded;
  if (!['marker', 'skip', 'dlq'].includes(onShredded)) problems.push(`SHREDDER_ON_SHREDDED: expected marker, skip or dlq, got ${JSON.stringify(onShredded)}`);
  const errorsTolerance = value('SHREDDER_ERRORS_TOLERANCE').toLowerCase() as ErrorsTolerance;
  if (!['all', 'none'].includes(errorsTolerance)) problems.push(`SHREDDER_ERRORS_TOLERANCE: expected all or none, got ${JSON.stringify(errorsTolerance)}`);
  const outputCompression = value('KAFKA_COMPRESSION').toLowerCase() as CompressionName;
  if (!COMPRESSIONS.includes(outputCompression)) problems.push(`KAFKA_COMPRESSION: expected ${COMPRESSIONS.join(', ')}, got ${JSON.stringify(outputCompression)}`);
  const logLevel = value('SHREDDER_LOG_LEVEL').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`SHREDDER_LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);

  const config: ShredderConfig = {
    command,
    kafka: { brokers, clientId: value('KAFKA_CLIENT_ID'), ssl, tls, sasl },
    routes,
    keysTopic,
    sourceKeysTopic,
    dlqTopic,
    auditTopic,
    auditKey,
    groupId,
    keys,
    rewrapKeysPerSecond,
    stateDir: value('SHREDDER_STATE_DIR'),
    algorithm,
    recordKeys,
    fields,
    fieldTags,
    subjectField,
    shreddedFieldValue,
    schemaRegistry,
    erasureDeadlineMs: integer('SHREDDER_ERASURE_DEADLINE_MS', 2000, 365 * 86_400_000),
    plaintextRetentionMs: integer('SHREDDER_PLAINTEXT_RETENTION_MS', 1000, Number.MAX_SAFE_INTEGER),
    onShredded,
    errorsTolerance,
    outputCompression,
    taskOpenTimeoutMs: integer('SHREDDER_TASK_OPEN_TIMEOUT_MS', 1000, 86_400_000),
    keyCacheSubjects: integer('SHREDDER_KEY_CACHE_SUBJECTS', 1, 100_000_000),
    httpPort: integer('SHREDDER_HTTP_PORT', 0, 65535),
    logLevel,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
