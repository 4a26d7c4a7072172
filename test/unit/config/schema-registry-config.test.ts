// SHREDDER_SCHEMA_REGISTRY_*: the URL checked, basic auth and TLS files read, every problem named by
// variable, and neither a password nor key material ever echoed.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config/config.js';

const valid = { KAFKA_BROKERS: 'localhost:9092', SHREDDER_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig('encrypt', { ...valid, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('schema registry configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shredder-registry-config-'));
  const pem = (label: string) => `-----BEGIN ${label}-----\nMIIBsecret\n-----END ${label}-----\n`;
  writeFileSync(join(dir, 'ca.pem'), pem('CERTIFICATE'));
  writeFileSync(join(dir, 'cert.pem'), pem('CERTIFICATE'));
  writeFileSync(join(dir, 'key.pem'), pem('PRIVATE KEY'));
  writeFileSync(join(dir, 'password'), ' pass word \n');
  writeFileSync(join(dir, 'not-pem'), 'hello');
  const files = {
    SHREDDER_SCHEMA_REGISTRY_CA_FILE: join(dir, 'ca.pem'),
    SHREDDER_SCHEMA_REGISTRY_CERT_FILE: join(dir, 'cert.pem'),
    SHREDDER_SCHEMA_REGISTRY_KEY_FILE: join(dir, 'key.pem'),
  };

  it('is absent unless SHREDDER_SCHEMA_REGISTRY_URL is set', () => {
    expect(loadConfig('encrypt', valid).schemaRegistry).to.equal(undefined);
  });

  it('reads the URL, basic auth (the password file without its last newline) and TLS files', () => {
    expect(loadConfig('encrypt', { ...valid, SHREDDER_SCHEMA_REGISTRY_URL: 'http://registry:8081' }).schemaRegistry).to.deep.equal({ url: 'http://registry:8081' });
    const config = loadConfig('decrypt', {
      ...valid,
      SHREDDER_SCHEMA_REGISTRY_URL: 'https://registry.example:8443/apis/ccompat/v7',
      SHREDDER_SCHEMA_REGISTRY_USERNAME: 'shredder',
      SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE: join(dir, 'password'),
      ...files,
    }).schemaRegistry!;
    expect(config).to.include({ url: 'https://registry.example:8443/apis/ccompat/v7', username: 'shredder', password: ' pass word ' });
    expect(config.tls!.ca!.toString()).to.equal(pem('CERTIFICATE'));
    expect(config.tls!.cert!.toString()).to.equal(pem('CERTIFICATE'));
    expect(config.tls!.key!.toString()).to.equal(pem('PRIVATE KEY'));
    const inline = loadConfig('encrypt', { ...valid, SHREDDER_SCHEMA_REGISTRY_URL: 'http://r:1', SHREDDER_SCHEMA_REGISTRY_USERNAME: 'u', SHREDDER_SCHEMA_REGISTRY_PASSWORD: ' p w ' });
    expect(inline.schemaRegistry).to.deep.equal({ url: 'http://r:1', username: 'u', password: ' p w ' });
  });

  it('names every problem at once, by variable, without echoing a password or key material', () => {
    const cases: [Record<string, string>, RegExp[]][] = [
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'registry:8081' }, [/^SHREDDER_SCHEMA_REGISTRY_URL: expected an http: or https: URL, got registry:/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'not a url' }, [/^SHREDDER_SCHEMA_REGISTRY_URL: not a URL/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'ftp://registry' }, [/expected an http: or https: URL, got ftp:/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'https://u:hunter2@registry' }, [/^SHREDDER_SCHEMA_REGISTRY_URL: must not hold credentials/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'https://registry/?token=hunter2' }, [/must not have a query or fragment/]],
      [{ SHREDDER_SCHEMA_REGISTRY_USERNAME: 'u', SHREDDER_SCHEMA_REGISTRY_PASSWORD: 'hunter2' }, [/^SHREDDER_SCHEMA_REGISTRY_USERNAME, SHREDDER_SCHEMA_REGISTRY_PASSWORD: set, but SHREDDER_SCHEMA_REGISTRY_URL is not/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'http://r', SHREDDER_SCHEMA_REGISTRY_USERNAME: 'u' }, [/^SHREDDER_SCHEMA_REGISTRY_PASSWORD or SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE: required/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'http://r', SHREDDER_SCHEMA_REGISTRY_PASSWORD: 'hunter2' }, [/^SHREDDER_SCHEMA_REGISTRY_USERNAME: required with a schema registry password/]],
      [
        { SHREDDER_SCHEMA_REGISTRY_URL: 'http://r', SHREDDER_SCHEMA_REGISTRY_USERNAME: 'u', SHREDDER_SCHEMA_REGISTRY_PASSWORD: 'hunter2', SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE: join(dir, 'password') },
        [/set one of them, not both/],
      ],
      [
        { SHREDDER_SCHEMA_REGISTRY_URL: 'http://r', SHREDDER_SCHEMA_REGISTRY_USERNAME: 'u', SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE: join(dir, 'missing') },
        [new RegExp(`^SHREDDER_SCHEMA_REGISTRY_PASSWORD_FILE: cannot read ${join(dir, 'missing')}: ENOENT$`)],
      ],
      // TLS files with an http: URL, each named
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'http://r', ...files }, [/_CA_FILE: set, but .* is not an https: URL/, /_CERT_FILE: set, but/, /_KEY_FILE: set, but/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'https://r', SHREDDER_SCHEMA_REGISTRY_CA_FILE: join(dir, 'not-pem') }, [/^SHREDDER_SCHEMA_REGISTRY_CA_FILE: .* is not a PEM file/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'https://r', SHREDDER_SCHEMA_REGISTRY_CA_FILE: join(dir, 'missing') }, [/^SHREDDER_SCHEMA_REGISTRY_CA_FILE: cannot read .*: ENOENT$/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'https://r', SHREDDER_SCHEMA_REGISTRY_CERT_FILE: files.SHREDDER_SCHEMA_REGISTRY_CERT_FILE }, [/^SHREDDER_SCHEMA_REGISTRY_KEY_FILE: required with SHREDDER_SCHEMA_REGISTRY_CERT_FILE/]],
      [{ SHREDDER_SCHEMA_REGISTRY_URL: 'https://r', SHREDDER_SCHEMA_REGISTRY_KEY_FILE: files.SHREDDER_SCHEMA_REGISTRY_KEY_FILE }, [/^SHREDDER_SCHEMA_REGISTRY_CERT_FILE: required with SHREDDER_SCHEMA_REGISTRY_KEY_FILE/]],
    ];
    for (const [env, expected] of cases) {
      const found = problems(env);
      expect(found, JSON.stringify(env)).to.have.length(expected.length);
      expected.forEach((pattern, i) => expect(found[i], JSON.stringify(env)).to.match(pattern));
      expect(found.join('\n')).to.not.contain('hunter2').and.not.contain('MIIB').and.not.contain('pass word');
    }
    // and all at once, beside the Kafka ones
    const all = problems({ KAFKA_SSL: 'maybe', SHREDDER_SCHEMA_REGISTRY_URL: 'ftp://r', SHREDDER_SCHEMA_REGISTRY_PASSWORD: 'hunter2' });
    expect(all.map((p) => p.split(':')[0])).to.deep.equal(['KAFKA_SSL', 'SHREDDER_SCHEMA_REGISTRY_URL', 'SHREDDER_SCHEMA_REGISTRY_USERNAME']);
  });
});
