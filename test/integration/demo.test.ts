// `npm start` runs `kafka-shredder demo`: what a newcomer sees must tell the story and end by itself.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../support/repo-root.js';

describe('demo', function () {
  this.timeout(180_000);

  it('walks through produce, read, forget and read again on its own broker, then stops with exit code 0', async () => {
    const child = spawn(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), 'demo'], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code, output).to.equal(0);
    const replay = output.slice(output.indexOf('7. A new consumer replays'));
    const lines = (user: string) => replay.split('\n').filter((l) => l.trim().startsWith(user)).map((l) => l.trim().slice(6).trim());
    expect(lines('alice')).to.deep.equal(['[shredded: the key is gone]', '[shredded: the key is gone]', '[shredded: the key is gone]', '[forget: purge this user]']);
    expect(lines('bob')).to.deep.equal(['{"type":"signed-up","name":"Bob Builder","email":"bob@example.org"}', '{"type":"order-placed","total":42.5}']);
    // before the forget, alice's events were readable through the decryptor
    expect(output.slice(output.indexOf('5. What consumers read'), output.indexOf('6. Alice asks'))).to.contain('"name":"Alice Liddell"');
    expect(output).to.contain("Stopped; the broker's data folder is removed.");
  });
});
