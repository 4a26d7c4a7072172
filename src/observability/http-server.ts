// The sidecar's HTTP endpoints on SHREDDER_HTTP_PORT: `/healthz` (alive, consumer running), `/readyz`
// (partitions assigned, key stores restored; with restore progress) and `/metrics` (Prometheus text).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Health, Readiness } from './health.js';
import type { Logger } from './logger.js';
import type { ProcessorMetrics } from './metrics.js';

export interface Observable {
  health(): Health;
  readiness(): Readiness;
  readonly metrics: ProcessorMetrics;
}

export interface HttpEndpoints {
  /** The port listened on (the configured one, or the one the OS chose). */
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(port: number, target: Observable, logger: Logger, host?: string): Promise<HttpEndpoints> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(`${JSON.stringify(body)}\n`);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') return json(405, { error: 'only GET' });
    if (path === '/healthz') {
      const health = target.health();
      return json(health.live ? 200 : 503, { status: health.live ? 'ok' : 'down', ...health });
    }
    if (path === '/readyz') {
      const readiness = target.readiness();
      return json(readiness.ready ? 200 : 503, { status: readiness.ready ? 'ready' : 'not ready', ...readiness });
    }
    if (path === '/metrics') {
      target.metrics.text().then(
        (text) => {
          response.writeHead(200, { 'content-type': target.metrics.registry.contentType });
          response.end(text);
        },
        (err: Error) => json(500, { error: err.message }),
      );
      return;
    }
    json(404, { error: 'not found', endpoints: ['/healthz', '/readyz', '/metrics'] });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  logger.info({ port: actual }, 'http endpoints listening: /healthz /readyz /metrics');
  return {
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
