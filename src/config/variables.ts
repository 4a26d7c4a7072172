// Every environment variable the product reads, in one table: `--help` prints it, configuration loading
// reads and validates from it, and a variable that looks like one of ours but is not in it is refused
// (see unknown-variables.ts).
export type CommandName = 'encrypt' | 'decrypt' | 'forget' | 'keys' | 'verify-erasure' | 'export' | 'reencrypt' | 'demo';

export interface VariableSpec {
  name: string;
  /** Default as shown to users; undefined = unset / required. */
  default?: string;
  /** Per-command defaults where they differ. */
  defaultFor?: Partial<Record<CommandName, string>>;
  required?: boolean;
  secret?: boolean;
  description: string;
}

export const VARIABLES: readonly VariableSpec[] = [
  { name: 'KAFKA_BROKERS', required: true, description: 'comma-separated host:port list (not needed by demo, which starts its own broker)' },
  { name: 'KAFKA_CLIENT_ID', default: 'kafka-shredder', description: 'Kafka client id' },
  { name: 'KAFKA_SSL', default: 'false', description: 'TLS to the brokers (true/false)' },
  { name: 'KAFKA_SSL_CA_FILE', description: "PEM file of the CA certificates that signed the brokers' certificates (unset: the system's CAs); needs KAFKA_SSL=true" },
  { name: 'KAFKA_SSL_CERT_FILE', description: 'PEM file of the client certificate (chain), for brokers that require TLS client authentication; needs KAFKA_SSL_KEY_FILE' },
  { name: 'KAFKA_SSL_KEY_FILE', secret: true, description: "PEM file of the client certificate's private key (unencrypted); needs KAFKA_SSL_CERT_FILE" },
  { name: 'KAFKA_SASL_MECHANISM', description: 'plain, scram-sha-256 or scram-sha-512 (unset: no SASL)' },
  { name: 'KAFKA_SASL_USERNAME', description: 'SASL user name' },
  { name: 'KAFKA_SASL_PASSWORD', secret: true, description: 'SASL password (never printed; or use KAFKA_SASL_PASSWORD_FILE)' },
  { name: 'KAFKA_SASL_PASSWORD_FILE', description: 'file holding the SASL password, instead of KAFKA_SASL_PASSWORD' },
  { name: 'KAFKA_COMPRESSION', default: 'none', description: 'decrypt: compression of the plaintext records it writes: none, gzip, snappy, lz4 or zstd (encrypted records do not compress)' },
  {
    name: 'SHREDDER_ROUTES',
    defaultFor: { encrypt: 'to-encrypt->encrypted-data', forget: 'to-encrypt->encrypted-data', export: 'to-encrypt->encrypted-data', decrypt: 'encrypted-data->decrypted-data' },
    description: 'comma-separated from->to topic pairs; all from topics and the keys topic need the same partition count',
  },
  { name: 'SHREDDER_KEYS_TOPIC', default: 'encryption-keys', description: 'compacted topic of wrapped per-subject keys (reencrypt: the new keyspace\'s)' },
  { name: 'SHREDDER_SOURCE_KEYS_TOPIC', description: 'reencrypt: the keys topic of the old keyspace, read only (required by reencrypt)' },
  { name: 'SHREDDER_DLQ_TOPIC', default: 'shredder-dlq', description: 'dead letter topic for records that cannot be processed' },
  { name: 'SHREDDER_AUDIT_TOPIC', default: 'shredder-erasure-audit', description: 'encrypt: erasure audit trail, one entry per forget carried out (no personal data; kept forever)' },
  { name: 'SHREDDER_AUDIT_KEY', secret: true, description: "32 bytes, base64 (or SHREDDER_AUDIT_KEY_FILE): keys the audit trail's subject references (unset: derived from the current master key, so they change with it)" },
  { name: 'SHREDDER_AUDIT_KEY_FILE', description: 'file holding the base64 audit key, instead of SHREDDER_AUDIT_KEY' },
  {
    name: 'SHREDDER_GROUP_ID',
    defaultFor: { encrypt: 'kafka-shredder-encrypt', decrypt: 'kafka-shredder-decrypt', 'verify-erasure': 'kafka-shredder-encrypt', reencrypt: 'kafka-shredder-reencrypt' },
    description: 'consumer group id and transactional id prefix',
  },
  { name: 'SHREDDER_KEY_PROVIDER', default: 'local', description: 'where the master keys are: local (SHREDDER_MASTER_KEY or SHREDDER_MASTER_KEYS) or pkcs11 (non-extractable keys in an HSM token)' },
  { name: 'SHREDDER_MASTER_KEY', required: true, secret: true, description: '32-byte master key, base64 (or use SHREDDER_MASTER_KEY_FILE, or a keyring: SHREDDER_MASTER_KEYS); wraps every data key' },
  { name: 'SHREDDER_MASTER_KEY_FILE', description: 'file holding the base64 master key, instead of SHREDDER_MASTER_KEY' },
  { name: 'SHREDDER_MASTER_KEYS', secret: true, description: 'a keyring instead of one key: comma-separated id:base64 entries; SHREDDER_MASTER_KEY_ID wraps new keys, the others only unwrap' },
  { name: 'SHREDDER_MASTER_KEYS_FILE', description: 'file of the keyring, one id:base64 a line (# comments), instead of SHREDDER_MASTER_KEYS' },
  { name: 'SHREDDER_MASTER_KEY_ID', default: '1', description: 'uint32 id of the master key that wraps new keys, written beside every wrapped key' },
  { name: 'SHREDDER_PKCS11_MODULE', description: 'pkcs11: path of the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so)' },
  { name: 'SHREDDER_PKCS11_TOKEN_LABEL', description: 'pkcs11: label of the token holding the master keys (or SHREDDER_PKCS11_SLOT)' },
  { name: 'SHREDDER_PKCS11_SLOT', description: 'pkcs11: slot index of the token, instead of SHREDDER_PKCS11_TOKEN_LABEL' },
  { name: 'SHREDDER_PKCS11_PIN', secret: true, description: "pkcs11: the token user's PIN (never printed; or use SHREDDER_PKCS11_PIN_FILE)" },
  { name: 'SHREDDER_PKCS11_PIN_FILE', description: 'pkcs11: file holding the PIN, instead of SHREDDER_PKCS11_PIN' },
  { name: 'SHREDDER_PKCS11_KEY_LABEL', default: 'kafka-shredder-master-key-', description: 'pkcs11: label prefix of the master keys: master key id N is the AES-256 key labelled <prefix>N' },
  { name: 'SHREDDER_REWRAP_KEYS_PER_SECOND', default: '1000', description: 'encrypt: how many keys a second are re-wrapped under the current master key after it changes' },
  { name: 'SHREDDER_KEY_CACHE_SUBJECTS', default: '100000', description: 'subjects whose keys a partition keeps in memory at most (about 2.7 KB each in the encryptor, 1.9 KB in the decryptor: docs/operations.md#sizing); the least recently used beyond it are read from the key store again' },
  { name: 'SHREDDER_STATE_DIR', default: './shredder-state', description: 'RocksDB key stores and checkpoints' },
  { name: 'SHREDDER_RECORD_KEYS', default: 'subject', description: 'encrypt, reencrypt: record keys of the encrypted topics and the keys topic: subject (the subject id) or pseudonym (a random pseudonym per key generation, which only the live key links to the subject: docs/security.md#pseudonymous-record-keys)' },
  { name: 'SHREDDER_ALGORITHM', default: 'chacha20-poly1305', description: 'algorithm for new records: chacha20-poly1305 or aes-256-gcm' },
  { name: 'SHREDDER_FIELDS', description: 'comma-separated JSON paths ($.email, $.address.street, $.phones[*]) to encrypt field by field (unset: whole value); with a schema registry, paths over the Avro, Protobuf or JSON Schema record' },
  { name: 'SHREDDER_FIELD_TAGS', description: 'comma-separated schema tags (PII): with a schema registry, also encrypt every field tagged so (Avro and JSON Schema confluent:tags, Protobuf (confluent.field_meta).tags)' },
  { name: 'SHREDDER_SUBJECT_FIELD', description: 'JSON path of the subject id inside the value (unset: the record key); needs SHREDDER_FIELDS or SHREDDER_FIELD_TAGS' },
  { name: 'SHREDDER_SHREDDED_FIELD_VALUE', default: 'null', description: 'decrypt, JSON field mode: JSON text a shredded field becomes (not in the contract: an extension); registry formats: null where the schema allows it, else an empty string or bytes' },
  { name: 'SHREDDER_SCHEMA_REGISTRY_URL', description: 'base URL of a Confluent-compatible schema registry API (https://registry:8081, http://apicurio:8080/apis/ccompat/v7); set: field mode reads values in the registry wire format (Avro, Protobuf, JSON Schema) and keeps their schema id' },
  { name: 'SHREDDER_SCHEMA_REGISTRY_USERNAME', description: 'basic auth user name for the schema registry; needs a password' },
  { name: 'SHREDDER_SCHEMA_REGISTRY_PASSWORD', secret: true, description: 'basic auth password for the schema registry (never printed; or use SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE)' },
  { name: 'SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE', description: 'file holding the schema registry password, instead of SHREDDER_SCHEMA_REGISTRY_PASSWORD' },
  { name: 'SHREDDER_SCHEMA_REGISTRY_CA_FILE', description: "PEM file of the CA certificates that signed the registry's certificate (unset: the system's CAs); needs an https URL" },
  { name: 'SHREDDER_SCHEMA_REGISTRY_CERT_FILE', description: 'PEM client certificate (chain) for a registry that requires TLS client authentication; needs SHREDDER_SCHEMA_REGISTRY_KEY_FILE' },
  { name: 'SHREDDER_SCHEMA_REGISTRY_KEY_FILE', secret: true, description: "PEM file of that certificate's private key (unencrypted); needs SHREDDER_SCHEMA_REGISTRY_CERT_FILE" },
  { name: 'SHREDDER_ERASURE_DEADLINE_MS', default: '86400000', description: 'bound on how long a forgotten key may stay in the keys topic (its max.compaction.lag.ms and segment.ms)' },
  { name: 'SHREDDER_PLAINTEXT_RETENTION_MS', default: '86400000', description: 'retention.ms for the plaintext topics the processor creates' },
  { name: 'SHREDDER_ON_SHREDDED', default: 'marker', description: 'decrypt: marker (null value, header shredder.status: shredded), skip, or dlq' },
  { name: 'SHREDDER_ERRORS_TOLERANCE', default: 'all', description: 'all: a record that cannot be processed goes to the dead letter topic and processing goes on; none: the processor stops at the first one (as Kafka Connect errors.tolerance)' },
  { name: 'SHREDDER_TASK_OPEN_TIMEOUT_MS', default: '60000', description: 'how long a partition may make no progress (its task failing to open, its batches failing on an infrastructure fault such as an HSM that is down) before /healthz reports the process unhealthy' },
  { name: 'SHREDDER_HTTP_PORT', default: '9400', description: '/healthz, /readyz, /metrics (Prometheus); 0 turns it off' },
  { name: 'SHREDDER_LOG_LEVEL', default: 'info', description: 'JSON log level: trace, debug, info, warn, error, fatal' },
  { name: 'KAFKA_SHREDDER_CACHE_DIR', default: '~/.cache/kafka-shredder', description: 'demo and tests only: where the local Apache Kafka broker\'s resolved classpath and the tests\' schema registry are kept' },
];

export function defaultOf(spec: VariableSpec, command?: CommandName): string | undefined {
  return (command && spec.defaultFor?.[command]) ?? spec.default;
}

/** The variables section of `--help`, with each default. */
export function variablesHelp(command?: CommandName): string {
  const width = Math.max(...VARIABLES.map((v) => v.name.length));
  const lines = VARIABLES.map((spec) => {
    let shown: string;
    if (!command && spec.defaultFor) {
      shown = Object.entries(spec.defaultFor).map(([cmd, value]) => `${cmd}: ${value}`).join('; ');
    } else {
      shown = defaultOf(spec, command) ?? (spec.required ? 'required' : 'unset');
    }
    return `  ${spec.name.padEnd(width)}  ${spec.description}\n  ${''.padEnd(width)}  default: ${shown}`;
  });
  return `Environment variables:\n${lines.join('\n')}\n`;
}
