// Starting encryptors against the test broker, each with its own topics, group and state folder.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type ShredderConfig } from '../../src/config/config.js';
import { Encryptor } from '../../src/encryptor/encryptor.js';
import { createLogger } from '../../src/observability/logger.js';
import { testBrokers, uniqueName } from './kafka.js';

export interface EncryptorSetup {
  env: Record<string, string>;
  config: ShredderConfig;
  input: string;
  output: string;
  keysTopic: string;
  dlqTopic: string;
  masterKey: Buffer;
}

/** Environment for one encryptor deployment: fresh topic names, master key and state folder. */
export function encryptorSetup(overrides: Record<string, string> = {}): EncryptorSetup {
  const masterKey = randomBytes(32);
  const input = uniqueName('plain');
  const output = uniqueName('encrypted');
  const env: Record<string, string> = {
    KAFKA_BROKERS: testBrokers().join(','),
    SHREDDER_ROUTES: `${input}->${output}`,
    SHREDDER_KEYS_TOPIC: uniqueName('keys'),
    SHREDDER_DLQ_TOPIC: uniqueName('dlq'),
    SHREDDER_AUDIT_TOPIC: uniqueName('audit'),
    SHREDDER_GROUP_ID: uniqueName('encrypt'),
    SHREDDER_MASTER_KEY: masterKey.toString('base64'),
    SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-state-')),
    SHREDDER_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SHREDDER_HTTP_PORT: '0',
    ...overrides,
  };
  const config = loadConfig('encrypt', env);
  return { env, config, input: config.routes[0].from, output: config.routes[0].to, keysTopic: config.keysTopic, dlqTopic: config.dlqTopic, masterKey };
}

export async function startEncryptor(setup: EncryptorSetup, stateDir?: string): Promise<Encryptor> {
  const config = stateDir ? { ...setup.config, stateDir } : setup.config;
  const encryptor = new Encryptor(config, createLogger(config.logLevel));
  await encryptor.start();
  return encryptor;
}
