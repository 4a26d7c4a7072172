// The command line contract: usage, every variable with its default, exit codes.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VARIABLES } from '../../../src/config/variables.js';
import { repoRoot } from '../../support/repo-root.js';

function cli(...args: string[]) {
  return cliWith({}, ...args);
}

function cliWith(env: Record<string, string>, ...args: string[]) {
  const result = spawnSync(process.execPath, [join(repoRoot(), 'bin/kafka-shredder.js'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...env },
  });
  return { code: result.status, out: result.stdout + result.stderr };
}

describe('kafka-shredder command line', () => {
  it('--help lists the commands and every variable of the contract with its default', () => {
    const { code, out } = cli('--help');
    expect(code).to.equal(0);
    for (const command of ['encrypt', 'decrypt', 'forget <subject>', 'demo']) expect(out).to.contain(command);
    for (const variable of VARIABLES) expect(out, variable.name).to.match(new RegExp(`\\b${variable.name}\\b`));
    expect(out).to.contain('default: 86400000');
    expect(out).to.contain('encrypt: to-encrypt->encrypted-data');
  });

  it('<command> --help shows that command\'s defaults', () => {
    const { code, out } = cli('decrypt', '--help');
    expect(code).to.equal(0);
    expect(out).to.contain('default: encrypted-data->decrypted-data');
    expect(out).to.contain('default: kafka-shredder-decrypt');
  });

  it('exits 2 on bad configuration, listing every problem by variable and never the secret', () => {
    const { code, out } = cliWith({ SHREDDER_MASTER_KEY: 'c2VjcmV0LWJ1dC10b28tc2hvcnQ=', SHREDDER_ALGORITHM: 'des' }, 'encrypt');
    expect(code).to.equal(2);
    expect(out).to.contain('KAFKA_BROKERS').and.contain('SHREDDER_MASTER_KEY').and.contain('SHREDDER_ALGORITHM');
    expect(out).to.not.contain('c2VjcmV0LWJ1dC10b28tc2hvcnQ=');
  });

  it('exits 2 on usage errors', () => {
    expect(cli('no-such-command').code).to.equal(2);
    expect(cli('forget').code).to.equal(2); // missing <subject>
  });

  it('export: needs the master key, says so by variable, and takes only a partition number', () => {
    const missing = cliWith({ KAFKA_BROKERS: '127.0.0.1:1' }, 'export', 'alice');
    expect(missing.code, missing.out).to.equal(2);
    expect(missing.out).to.contain('SHREDDER_MASTER_KEY');
    expect(missing.out).to.not.contain('SHREDDER_GROUP_ID');
    const key = Buffer.alloc(32, 1).toString('base64');
    const partition = cliWith({ KAFKA_BROKERS: '127.0.0.1:1', SHREDDER_MASTER_KEY: key }, 'export', 'alice', '--partition', 'one');
    expect(partition.code).to.equal(2);
    expect(partition.out).to.contain('--partition: expected a partition number');
    expect(cli('export').code).to.equal(2); // missing <subject>
    expect(cli('export', '--help').out).to.contain('default: to-encrypt->encrypted-data').and.contain('6 forgotten');
  });

  it('--version prints the package version', () => {
    const { code, out } = cli('--version');
    expect(code).to.equal(0);
    expect(out.trim()).to.equal(JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')).version);
  });

  it('exits 2 on a misspelled variable, naming the one meant, instead of running with the defaults', () => {
    const key = Buffer.alloc(32, 1).toString('base64');
    for (const command of ['encrypt', 'decrypt']) {
      const { code, out } = cliWith({ KAFKA_BROKERS: '127.0.0.1:1', SHREDDER_MASTER_KEY: key, SHREDER_ROUTES: 'orders-plain->orders' }, command);
      expect(code, out).to.equal(2);
      expect(out).to.contain('SHREDER_ROUTES: not a kafka-shredder variable; did you mean SHREDDER_ROUTES?');
    }
    const { code, out } = cliWith({ KAFKA_BROKERS: '127.0.0.1:1', SHREDDER_ROUTE: 'a->b' }, 'forget', 'alice');
    expect(code).to.equal(2);
    expect(out).to.contain('did you mean SHREDDER_ROUTES?');
  });
});
