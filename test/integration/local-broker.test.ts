// The local broker launcher's promises: cached jars after the first run, and no broker left behind
// when its parent dies.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { resolveKafkaJars } from '../../src/dev/local-broker/index.js';
import { eventually } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

describe('local Kafka broker launcher', () => {
  it('resolves the broker jars from its cache without running Maven again', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent'; // no mvn (nor anything else) can be found
    try {
      const jars = await resolveKafkaJars();
      expect(jars.some((jar) => /kafka_2\.13-4\.\d+\.\d+\.jar$/.test(jar))).to.equal(true);
      expect(jars.every((jar) => existsSync(jar))).to.equal(true);
    } finally {
      process.env.PATH = path;
    }
  });

  it('stops the broker and removes its data folder when the parent process is killed', async function () {
    this.timeout(120_000);
    const launcher = `
      import { LocalKafkaBroker } from ${JSON.stringify(join(repoRoot(), 'dist/src/dev/local-broker/index.js'))};
      const broker = new LocalKafkaBroker();
      await broker.start();
      console.log(JSON.stringify({ port: Number(broker.brokers[0].split(':')[1]), dataDir: broker.dataDirectory }));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', launcher], { stdio: ['ignore', 'pipe', 'inherit'] });
    const started = await new Promise<{ port: number; dataDir: string }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]));
      });
      child.on('exit', (code) => reject(new Error(`launcher exited with ${code} before the broker started`)));
    });
    expect(await portAnswers(started.port)).to.equal(true);
    expect(existsSync(started.dataDir)).to.equal(true);

    child.kill('SIGKILL');
    await eventually('the broker port to close', async () => !(await portAnswers(started.port)), 30_000, 200);
    await eventually('the data folder to be removed', async () => !existsSync(started.dataDir), 30_000, 200);
  });
});
