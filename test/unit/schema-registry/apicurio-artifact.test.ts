// The local schema registry's distribution cache: reused when complete, fetched again when not.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apicurioPom, DEFAULT_APICURIO_VERSION, resolveApicurioRegistry } from '../../../src/dev/schema-registry/apicurio-artifact.js';

/** A cache folder whose distribution has `entries`; PATH without Maven while `work` runs. */
async function withCache<T>(entries: string[], work: (cacheDir: string, dir: string) => Promise<T>): Promise<T> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'apicurio-cache-'));
  const dir = join(cacheDir, `apicurio-registry-${DEFAULT_APICURIO_VERSION}`);
  for (const entry of entries) {
    if (entry.endsWith('.jar')) {
      mkdirSync(join(dir, 'dist'), { recursive: true });
      writeFileSync(join(dir, 'dist', entry), '');
    } else mkdirSync(join(dir, 'dist', entry), { recursive: true });
  }
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent'; // no mvn can be found
  try {
    return await work(cacheDir, dir);
  } finally {
    process.env.PATH = path;
  }
}

describe('Apicurio Registry distribution cache', () => {
  const complete = ['quarkus-run.jar', 'app', 'lib/boot', 'lib/main', 'quarkus'];

  it('reuses an unpacked distribution without Maven', async () => {
    await withCache(complete, async (cacheDir, dir) => {
      expect(await resolveApicurioRegistry({ cacheDir })).to.equal(join(dir, 'dist'));
    });
  });

  it('fetches again when the distribution is incomplete (an unpack cut short), leaving no partial files', async () => {
    await withCache(complete.filter((entry) => entry !== 'lib/main'), async (cacheDir, dir) => {
      const error = await resolveApicurioRegistry({ cacheDir }).then(() => undefined, (err: Error) => err);
      expect(error?.message).to.match(/cannot run Maven/);
      expect(readdirSync(dir)).to.deep.equal(['dist']);
    });
  });

  it('asks Maven for the all-in-one tar.gz of the version, unpacked where it is told', () => {
    const pom = apicurioPom('3.3.3', '/tmp/out');
    for (const part of ['<groupId>io.apicurio</groupId>', '<artifactId>apicurio-registry-app</artifactId>', '<version>3.3.3</version>', '<classifier>all</classifier>', '<type>tar.gz</type>', '<outputDirectory>/tmp/out</outputDirectory>']) {
      expect(pom).to.include(part);
    }
  });
});
