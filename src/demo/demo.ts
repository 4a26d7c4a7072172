// `kafka-shredder demo` (`npm start`): a local Apache Kafka and a walk through the product.
import { LocalKafkaBroker } from '../kafka/local-broker/index.js';

const say = (line: string) => process.stdout.write(`${line}\n`);

function waitForStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export async function runDemo(): Promise<number> {
  say('kafka-shredder demo: starting a local single-node Apache Kafka (KRaft) on 127.0.0.1.');
  const broker = new LocalKafkaBroker({ onProgress: (line) => say(`  [kafka] ${line}`) });
  const stopping = waitForStopSignal();
  await broker.start();
  say('');
  say(`Kafka is up at ${broker.brokers.join(',')}.`);
  say('The scripted walk-through (produce events for two users, read them decrypted, forget one user,');
  say('read again) is not built yet: it needs the decryptor. Meanwhile you can point');
  say(`KAFKA_BROKERS=${broker.brokers.join(',')} SHREDDER_MASTER_KEY=$(head -c32 /dev/urandom | base64) kafka-shredder encrypt`);
  say('at this broker.');
  say('Press Ctrl-C to stop it.');
  const signal = await stopping;
  say(`\n${signal}: stopping Kafka and removing its data folder.`);
  await broker.stop();
  say('Stopped.');
  return 0;
}
