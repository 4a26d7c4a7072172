// What Kubernetes probes see when things go wrong: a partition whose task cannot open makes the
// process unhealthy after a bounded time, said in one log line; a stop makes it unready at once.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHttpServer } from '../../src/observability/http-server.js';
import { createLogger } from '../../src/observability/logger.js';
import { startChildProcessor } from '../support/child-processor.js';
import { encryptorSetup, startEncryptor } from '../support/encryptor.js';
import { freePort, get } from '../support/http.js';
import { eventually } from '../support/kafka.js';

describe('probes', function () {
  this.timeout(120_000);

  it('reports the process unhealthy once its key stores cannot be opened for SHREDDER_TASK_OPEN_TIMEOUT_MS, in one error line, and healthy again once they open', async () => {
    const port = await freePort();
    // a state dir below a regular file: every store's mkdir fails (ENOTDIR), as an unwritable volume would
    const blocker = join(mkdtempSync(join(tmpdir(), 'shredder-blocked-')), 'not-a-folder');
    writeFileSync(blocker, '');
    const setup = encryptorSetup({ SHREDDER_STATE_DIR: join(blocker, 'state'), SHREDDER_TASK_OPEN_TIMEOUT_MS: '3000', SHREDDER_HTTP_PORT: String(port), SHREDDER_LOG_LEVEL: 'info' });
    const child = startChildProcessor('encrypt', setup.env);
    try {
      const health = await eventually('/healthz 503', async () => {
        const response = await get(port, '/healthz').catch(() => undefined);
        return response?.status === 503 ? JSON.parse(response.body) : undefined;
      }, 60_000, 200);
      expect(health.live).to.equal(false);
      expect(health.problem).to.match(/^partition \d: its task could not be opened for \d+ s: .*ENOTDIR/);
      const readiness = JSON.parse((await get(port, '/readyz')).body);
      expect(readiness.ready).to.equal(false);
      expect(readiness.partitions.map((p: { state: string }) => p.state)).to.deep.equal(['failing', 'failing', 'failing']);
      expect(readiness.partitions[0].error).to.contain('ENOTDIR');

      // some retries later: still one warning and one error line about it, and nothing from kafkajs
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const about = child.logs.filter((l) => String(l.msg).startsWith('task could not be opened'));
      expect(about.map((l) => [l.level, l.msg])).to.deep.equal([
        [40, 'task could not be opened; retrying'],
        [50, 'task could not be opened for 3 s: the process is unhealthy (/healthz 503) until it opens'],
      ]);
      expect(child.logs.filter((l) => l.level as number >= 40).length, child.output().slice(-3000)).to.equal(2);

      rmSync(blocker); // the volume is back
      await eventually('/healthz 200 and /readyz 200 again', async () => (await get(port, '/healthz')).status === 200 && (await get(port, '/readyz')).status === 200, 60_000, 500);
      await child.waitForLog((l) => l.msg === 'task opened after failed attempts');
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
    }
  });

  it('answers /readyz 503 from the moment a stop begins', async () => {
    const setup = encryptorSetup();
    const encryptor = await startEncryptor(setup);
    const http = await startHttpServer(0, encryptor, createLogger('silent'), '127.0.0.1');
    try {
      await eventually('/readyz 200', async () => (await get(http.port, '/readyz')).status === 200, 60_000);
      const stopped = encryptor.stop(); // (a SIGTERM's first step)
      const { status, body } = await get(http.port, '/readyz');
      expect(status).to.equal(503);
      expect(JSON.parse(body)).to.include({ ready: false, stopping: true });
      await stopped;
    } finally {
      await http.close();
      await encryptor.stop();
    }
  });
});
