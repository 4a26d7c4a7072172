// SHREDDER_SCHEMA_REGISTRY_*: where the Confluent-compatible schema registry is, and how to log in to it
// (basic auth, TLS from PEM files), checked like the Kafka connection's variables.
import type { SchemaRegistryConnection } from '../schema-registry/client.js';
import type { VariableReader } from './key-provider-config.js';

export type SchemaRegistryConfig = SchemaRegistryConnection & { tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } };

const URL_VARIABLE = 'SHREDDER_SCHEMA_REGISTRY_URL';
const TLS_FILES = [
  ['SHREDDER_SCHEMA_REGISTRY_CA_FILE', 'ca'],
  ['SHREDDER_SCHEMA_REGISTRY_CERT_FILE', 'cert'],
  ['SHREDDER_SCHEMA_REGISTRY_KEY_FILE', 'key'],
] as const;
const OTHERS = ['SHREDDER_SCHEMA_REGISTRY_USERNAME', 'SHREDDER_SCHEMA_REGISTRY_PASSWORD', 'SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE', ...TLS_FILES.map(([name]) => name)];

/** The registry connection, or undefined when SHREDDER_SCHEMA_REGISTRY_URL is unset; problems go to `reader.problems`. */
export function parseSchemaRegistry(reader: VariableReader, env: NodeJS.ProcessEnv): SchemaRegistryConfig | undefined {
  const { raw, readFile, problems } = reader;
  const text = raw(URL_VARIABLE);
  if (text === undefined) {
    const orphans = OTHERS.filter((name) => raw(name) !== undefined);
    if (orphans.length > 0) problems.push(`${orphans.join(', ')}: set, but ${URL_VARIABLE} is not`);
    return undefined;
  }
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    problems.push(`${URL_VARIABLE}: not a URL (expected http://host:port or https://host:port, with the API's path if it has one)`);
  }
  if (url) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push(`${URL_VARIABLE}: expected an http: or https: URL, got ${url.protocol}`);
    // (credentials in the URL would end up in every message that names it)
    if (url.username || url.password) problems.push(`${URL_VARIABLE}: must not hold credentials; use SHREDDER_SCHEMA_REGISTRY_USERNAME and SHREDDER_SCHEMA_REGISTRY_PASSWORD(_FILE)`);
    if (url.search || url.hash) problems.push(`${URL_VARIABLE}: must not have a query or fragment (the API's paths are appended to it)`);
  }

  const username = raw('SHREDDER_SCHEMA_REGISTRY_USERNAME');
  const passwordFile = raw('SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE');
  // (a password is taken as given, spaces and all, as KAFKA_SASL_PASSWORD is)
  const passwordVariable = env.SHREDDER_SCHEMA_REGISTRY_PASSWORD || undefined;
  if (passwordFile !== undefined && passwordVariable !== undefined) {
    problems.push('SHREDDER_SCHEMA_REGISTRY_PASSWORD, SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE: set one of them, not both');
  }
  // (a password file's trailing newline is not part of the password, as with the Kafka password's file)
  const password = passwordFile !== undefined ? readFile('SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE', passwordFile)?.toString('utf8').replace(/\r?\n$/, '') : passwordVariable;
  if (username !== undefined && password === undefined && passwordFile === undefined) {
    problems.push('SHREDDER_SCHEMA_REGISTRY_PASSWORD or SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE: required with SHREDDER_SCHEMA_REGISTRY_USERNAME');
  }
  if (username === undefined && (passwordVariable !== undefined || passwordFile !== undefined)) {
    problems.push('SHREDDER_SCHEMA_REGISTRY_USERNAME: required with a schema registry password');
  }

  let tls: SchemaRegistryConfig['tls'];
  for (const [name, field] of TLS_FILES) {
    const path = raw(name);
    if (path === undefined) continue;
    if (url && url.protocol !== 'https:') problems.push(`${name}: set, but ${URL_VARIABLE} is not an https: URL`);
    const contents = readFile(name, path);
    if (contents === undefined) continue;
    if (!/-----BEGIN [A-Z ]+-----/.test(contents.toString('latin1'))) problems.push(`${name}: ${path} is not a PEM file (no -----BEGIN ...----- line)`);
    (tls ??= {})[field] = contents;
  }
  const cert = raw('SHREDDER_SCHEMA_REGISTRY_CERT_FILE') !== undefined;
  const key = raw('SHREDDER_SCHEMA_REGISTRY_KEY_FILE') !== undefined;
  if (cert && !key) problems.push("SHREDDER_SCHEMA_REGISTRY_KEY_FILE: required with SHREDDER_SCHEMA_REGISTRY_CERT_FILE (the client certificate's private key)");
  if (key && !cert) problems.push('SHREDDER_SCHEMA_REGISTRY_CERT_FILE: required with SHREDDER_SCHEMA_REGISTRY_KEY_FILE (the client certificate)');

  return { url: text, ...(username !== undefined ? { username, password: password ?? '' } : {}), ...(tls ? { tls } : {}) };
}
