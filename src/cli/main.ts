// `kafka-shredder` command line: commands and exit codes from the contract
// (0 clean stop, 2 bad configuration or usage, 1 anything else).
import '../kafka/linear-grouping.js'; // (first: before kafkajs loads, see there)
import '../kafka/compression.js'; // snappy, lz4 and zstd batches from Java producers (after linear-grouping: it loads kafkajs)
import { Command, CommanderError } from 'commander';
import { variablesHelp, type CommandName } from '../config/variables.js';
import { runDemo } from '../demo/demo.js';
import { Decryptor } from '../decryptor/decryptor.js';
import { Encryptor } from '../encryptor/encryptor.js';
import { requestForget } from '../encryptor/forget-request.js';
import { createKafka } from '../kafka/client.js';
import { explainConnectionError } from '../kafka/connection-errors.js';
import { TopicLayoutError } from '../kafka/topics.js';
import { createLogger } from '../observability/logger.js';
import { VERSION } from '../version.js';
import { configOrReport, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runUntilSignal } from './run-processor.js';

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
    if (!(err instanceof TopicLayoutError)) throw err;
    process.stderr.write(`kafka-shredder forget: ${err.message}\n`);
    return EXIT_USAGE;
  }
  process.stdout.write(`forget request written to ${config.routes.map((r) => r.from).join(', ')}\n`);
  return EXIT_OK;
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
    program.command('forget').argument('<subject>', 'subject id (the record key)').description('ask for the erasure of a subject'),
    'forget',
  ).action((subject: string) => run(() => forget(subject))());
  program
    .command('demo')
    .description('start a local single-node Apache Kafka and walk through produce, read, forget, read again')
    .action(run(() => runDemo()));

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
