// `kafka-shredder` command line: commands and exit codes from the contract
// (0 clean stop, 2 bad configuration or usage, 1 anything else).
import '../kafka/linear-grouping.js'; // (first: before kafkajs loads, see there)
import '../kafka/record-encoding.js'; // (as early: see there)
import '../kafka/record-batch-encoding.js'; // (as early: see there)
import '../kafka/produce-request-encoding.js'; // (as early: see there)
import '../kafka/compression.js'; // snappy, lz4 and zstd batches from Java producers (after linear-grouping: it loads kafkajs)
import { createWriteStream, existsSync } from 'node:fs';
import { once } from 'node:events';
import { Command, CommanderError } from 'commander';
import { variablesHelp, type CommandName } from '../config/variables.js';
import { Decryptor } from '../decryptor/decryptor.js';
import { Encryptor } from '../encryptor/encryptor.js';
import { Reencryptor } from '../reencryptor/reencryptor.js';
import { requestForget } from '../encryptor/forget-request.js';
import { createKafka } from '../kafka/client.js';
import { explainConnectionError } from '../kafka/connection-errors.js';
import { exitCodeFor, messageOf } from '../errors/shredder-errors.js';
import { AUDIT_KEY_PURPOSE } from '../encryptor/erasure-audit.js';
import { formatErasureReceipt, verifyErasure } from '../erasure/verify-erasure.js';
import { ProgressBar } from '../export/progress-bar.js';
import { exportSubject, formatExportSummary } from '../export/subject-export.js';
import { fieldMode } from '../fields/field-mode.js';
import { SchemaRegistryClient } from '../schema-registry/client.js';
import { openKeyring } from '../keys/key-providers.js';
import { formatKeysStatus, keysStatus, type KeysStatus } from '../keys/keys-status.js';
import { createLogger, subjectRefFor } from '../observability/logger.js';
import { VERSION } from '../version.js';
import { configOrReport, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runUntilSignal } from './run-processor.js';

/**
 * `demo`: the demo and its local broker live in src/dev, which the npm package leaves out (they need
 * Java and Maven, a production host does not), so it is imported only when asked for, and an installed
 * copy says where it runs instead.
 */
async function demo(): Promise<number> {
  if (!existsSync(new URL('../dev/demo.js', import.meta.url))) {
    process.stderr.write('kafka-shredder demo: the demo runs from a source checkout of kafka-shredder (`npm install && npm start`), not from the installed package\n');
    return EXIT_USAGE;
  }
  const { runDemo } = await import('../dev/demo.js');
  return runDemo();
}

async function forget(subject: string): Promise<number> {
  const config = configOrReport('forget');
  if (!config) return EXIT_USAGE;
  const logger = createLogger(config.logLevel);
  try {
    await requestForget(createKafka(config.kafka, logger), config.routes.map((r) => r.from), Buffer.from(subject, 'utf8'), { allPartitions: config.subjectField !== undefined });
  } catch (err) {
    // one line naming the variable to check, not kafkajs' retries and stack (connection-errors.ts)
    const problem = explainConnectionError(err, config.kafka);
    if (problem) {
      process.stderr.write(`kafka-shredder forget: ${problem.message}\n`);
      return EXIT_FAILURE;
    }
    process.stderr.write(`kafka-shredder forget: ${messageOf(err)}\n`);
    return exitCodeFor(err);
  }
  process.stdout.write(`forget request written to ${config.routes.map((r) => r.from).join(', ')}\n`);
  return EXIT_OK;
}

/** `keys status`: live keys per master key id and partition, from the keys topic. */
async function keysStatusCommand(json: boolean): Promise<number> {
  const config = configOrReport('keys');
  if (!config) return EXIT_USAGE;
  const logger = createLogger(config.logLevel);
  let status: KeysStatus;
  try {
    status = await keysStatus(createKafka(config.kafka, logger), config.keysTopic);
  } catch (err) {
    const problem = explainConnectionError(err, config.kafka);
    process.stderr.write(`kafka-shredder keys status: ${problem?.message ?? messageOf(err)}\n`);
    return exitCodeFor(err);
  }
  process.stdout.write(json ? `${JSON.stringify({ ...status, currentMasterKeyId: config.keys.currentId })}\n` : formatKeysStatus(status, config.keys.currentId));
  return EXIT_OK;
}

/** `verify-erasure <subject>`: the receipt, and its status as the exit code. */
async function verifyErasureCommand(subject: string, json: boolean): Promise<number> {
  const config = configOrReport('verify-erasure');
  if (!config) return EXIT_USAGE;
  const logger = createLogger(config.logLevel);
  // the master keys, when given, name the subject as the logs do and derive the default audit key
  const keys = config.keys.provider === 'pkcs11' || config.keys.masterKeys.length > 0 ? openKeyring(config.keys) : undefined;
  try {
    const receipt = await verifyErasure({
      kafka: createKafka(config.kafka, logger),
      subject: Buffer.from(subject, 'utf8'),
      keysTopic: config.keysTopic,
      auditTopic: config.auditTopic,
      auditKey: config.auditKey ?? keys?.keyring.derive(AUDIT_KEY_PURPOSE),
      subjectRef: keys ? subjectRefFor(keys.keyring) : undefined,
      keyring: keys?.keyring,
      erasureDeadlineMs: config.erasureDeadlineMs,
      stateDir: config.stateDir,
      groupId: config.groupId,
      allPartitions: config.subjectField !== undefined,
    });
    process.stdout.write(json ? `${JSON.stringify(receipt)}\n` : formatErasureReceipt(receipt));
    return receipt.exitCode;
  } catch (err) {
    const problem = explainConnectionError(err, config.kafka);
    process.stderr.write(`kafka-shredder verify-erasure: ${problem?.message ?? messageOf(err)}\n`);
    return exitCodeFor(err);
  } finally {
    await keys?.close();
  }
}

interface ExportOptions {
  json?: boolean;
  output?: string;
  partition?: string;
}

/** `export <subject>`: the subject's records as JSON lines, then a summary; its status as the exit code. */
async function exportCommand(subject: string, options: ExportOptions): Promise<number> {
  const config = configOrReport('export');
  if (!config) return EXIT_USAGE;
  if (options.partition !== undefined && !/^\d+$/.test(options.partition)) {
    process.stderr.write(`kafka-shredder export: --partition: expected a partition number, got ${JSON.stringify(options.partition)}\n`);
    return EXIT_USAGE;
  }
  // (stdout may carry the records: logs go to stderr)
  const logger = createLogger(config.logLevel, process.stderr);
  const keys = openKeyring(config.keys, (message) => logger.warn({ provider: config.keys.provider }, message));
  const registry = config.schemaRegistry && { client: new SchemaRegistryClient(config.schemaRegistry), tags: config.fieldTags };
  // (the records are personal data in clear: a file of them is readable by its owner only)
  const output = options.output !== undefined ? createWriteStream(options.output, { mode: 0o600 }) : process.stdout;
  const summaryTo = options.output !== undefined ? process.stdout : process.stderr;
  const progress = ProgressBar.on(process.stderr);
  try {
    if (output !== process.stdout) await once(output, 'open');
    const summary = await exportSubject({
      kafka: createKafka(config.kafka, logger),
      subject: Buffer.from(subject, 'utf8'),
      topics: config.routes.map((r) => r.to),
      keysTopic: config.keysTopic,
      keyring: keys.keyring,
      fields: fieldMode(config.fields, config.subjectField, config.shreddedFieldValue, registry),
      partition: options.partition !== undefined ? Number(options.partition) : undefined,
      write: (line) => (output.write(`${line}\n`) ? undefined : once(output, 'drain').then(() => undefined)),
      onProgress: (p) => progress?.update(p),
    });
    progress?.done();
    if (output !== process.stdout) await new Promise<void>((resolve, reject) => output.end((err?: Error | null) => (err ? reject(err) : resolve())));
    summaryTo.write(options.json ? `${JSON.stringify(summary)}\n` : formatExportSummary(summary));
    return summary.exitCode;
  } catch (err) {
    progress?.done();
    const problem = explainConnectionError(err, config.kafka);
    process.stderr.write(`kafka-shredder export: ${problem?.message ?? messageOf(err)}\n`);
    return exitCodeFor(err);
  } finally {
    if (output !== process.stdout && !output.writableFinished) output.destroy();
    await keys.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = EXIT_OK;
  const run = (action: () => Promise<number>) => async () => {
    exitCode = await action();
  };
  const program = new Command('kafka-shredder')
    .description('Crypto-shredding for Apache Kafka: per-subject encryption, erasure by destroying keys.')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .exitOverride()
    .showHelpAfterError('(kafka-shredder --help lists commands and variables)')
    .addHelpText('after', `\n${variablesHelp()}`);

  const withVariables = (cmd: Command, name: CommandName) => cmd.addHelpText('after', `\n${variablesHelp(name)}`);
  withVariables(program.command('encrypt').description('run the encryptor until SIGTERM/SIGINT'), 'encrypt')
    .action(run(() => runUntilSignal('encrypt', (config, logger) => new Encryptor(config, logger))));
  withVariables(program.command('decrypt').description('run the decryptor until SIGTERM/SIGINT'), 'decrypt')
    .action(run(() => runUntilSignal('decrypt', (config, logger) => new Decryptor(config, logger))));
  withVariables(
    program.command('reencrypt').description('migrate encrypted topics to a new keyspace (keys topic, algorithm, master key) until SIGTERM/SIGINT'),
    'reencrypt',
  ).action(run(() => runUntilSignal('reencrypt', (config, logger) => new Reencryptor(config, logger))));
  withVariables(
    program.command('forget').argument('<subject>', 'subject id (the record key)').description('ask for the erasure of a subject'),
    'forget',
  ).action((subject: string) => run(() => forget(subject))());
  const keys = program.command('keys').description('inspect the keys topic');
  withVariables(
    keys.command('status').option('--json', 'print a machine-readable summary').description('count the live keys each master key id wraps, per keys-topic partition'),
    'keys',
  ).action((options: { json?: boolean }) => run(() => keysStatusCommand(options.json === true))());
  withVariables(
    program
      .command('verify-erasure')
      .argument('<subject>', 'subject id (the record key)')
      .option('--json', 'print the receipt as JSON')
      .description('show that a subject\'s keys are destroyed: exit 0 erased, 1 overdue, 3 pending, 4 not forgotten, 5 unknown'),
    'verify-erasure',
  ).action((subject: string, options: { json?: boolean }) => run(() => verifyErasureCommand(subject, options.json === true))());
  withVariables(
    program
      .command('export')
      .argument('<subject>', 'subject id (the record key, or the value of SHREDDER_SUBJECT_FIELD)')
      .option('--output <file>', 'write the records to this file (mode 0600) instead of standard output')
      .option('--partition <n>', "read this partition only (default: the subject's, as the default partitioner picks it; every partition with SHREDDER_SUBJECT_FIELD)")
      .option('--json', 'print the summary as JSON')
      .description('write every record of a subject, decrypted, as JSON lines (GDPR Art. 15 and 20): exit 0 exported, 5 unknown, 6 forgotten'),
    'export',
  ).action((subject: string, options: ExportOptions) => run(() => exportCommand(subject, options))());
  program
    .command('demo')
    .description('from a source checkout: start a local single-node Apache Kafka and walk through produce, read, forget, read again')
    .action(run(demo));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0; usage errors with 1, which the
      // contract wants as 2.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    throw err;
  }
  return exitCode;
}
