// Starting decryptors and decrypting consumers behind a test encryptor: same keys topic and master key,
// their own group, state folder and plaintext output.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { loadConfig, type ShredderConfig } from '../../src/config/config.js';
import { Decryptor } from '../../src/decryptor/decryptor.js';
import { DecryptingConsumer, type DecryptedMessage, type DecryptingConsumerOptions } from '../../src/decryptor/decrypting-consumer.js';
import { createLogger } from '../../src/observability/logger.js';
import type { EncryptorSetup } from './encryptor.js';
import { uniqueName } from './kafka.js';

export interface DecryptorSetup {
  env: Record<string, string>;
  config: ShredderConfig;
  /** The encrypted topic it reads. */
  input: string;
  /** The plaintext topic it writes. */
  output: string;
}

export function decryptorSetup(encryptor: EncryptorSetup, overrides: Record<string, string> = {}): DecryptorSetup {
  const output = uniqueName('decrypted');
  const env: Record<string, string> = {
    ...encryptor.env,
    SHREDDER_ROUTES: `${encryptor.output}->${output}`,
    SHREDDER_GROUP_ID: uniqueName('decrypt'),
    SHREDDER_STATE_DIR: mkdtempSync(join(tmpdir(), 'shredder-decrypt-state-')),
    ...overrides,
  };
  const config = loadConfig('decrypt', env);
  return { env, config, input: config.routes[0].from, output: config.routes[0].to };
}

export async function startDecryptor(setup: DecryptorSetup, kafka?: Kafka, stateDir?: string): Promise<Decryptor> {
  const config = stateDir ? { ...setup.config, stateDir } : setup.config;
  const logger = createLogger(config.logLevel);
  const decryptor = kafka ? new Decryptor(config, logger, kafka) : new Decryptor(config, logger);
  await decryptor.start();
  return decryptor;
}

/** The options of a DecryptingConsumer in a fresh group over the encryptor's output. */
export function decryptingConsumerOptions(encryptor: EncryptorSetup, options: Partial<DecryptingConsumerOptions> = {}): DecryptingConsumerOptions {
  const { config } = encryptor;
  return {
    fields: config.fields,
    fieldTags: config.fieldTags,
    subjectField: config.subjectField,
    schemaRegistry: config.schemaRegistry,
    brokers: config.kafka.brokers,
    groupId: uniqueName('app'),
    topics: [encryptor.output],
    masterKey: encryptor.masterKey,
    keysTopic: config.keysTopic,
    dlqTopic: config.dlqTopic,
    stateDir: mkdtempSync(join(tmpdir(), 'shredder-app-state-')),
    logger: createLogger(config.logLevel),
    ...options,
  };
}

/** A DecryptingConsumer in a fresh group over the encryptor's output, collecting what it is handed. */
export async function startDecryptingConsumer(
  encryptor: EncryptorSetup,
  options: Partial<DecryptingConsumerOptions> = {},
): Promise<{ consumer: DecryptingConsumer; received: DecryptedMessage[] }> {
  const consumer = new DecryptingConsumer(decryptingConsumerOptions(encryptor, options));
  const received: DecryptedMessage[] = [];
  await consumer.run({ eachMessage: (message) => void received.push(message) });
  return { consumer, received };
}
