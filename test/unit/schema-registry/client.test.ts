// The registry client's HTTP behaviour against real local servers (node:http and node:https): what is
// retried and for how long, what is the record's fault, basic auth and mutual TLS from PEM files, and
// no credential in any message. The client against a real registry: test/integration/schema-registry.test.ts.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { RecordError, TransientError } from '../../../src/errors/shredder-errors.js';
import { SchemaRegistryClient } from '../../../src/schema-registry/client.js';
import { makeTestCertificates, type TestCertificates } from '../../support/certificates.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A registry answering with `handler`; every request is recorded. */
async function registry(handler: Handler): Promise<{ url: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server = createHttpServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}/apis/ccompat/v7`, requests, close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }) };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
  res.end(JSON.stringify(body));
};

const AVRO = '{"type":"string"}';

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(() => { throw new Error('expected a rejection'); }, (err: Error) => err);
}

describe('schema registry client', () => {
  it('reads a schema by id once (ids are immutable), Avro when the answer has no schemaType, with its references', async () => {
    const server = await registry((req, res) => {
      if (req.url === '/apis/ccompat/v7/schemas/ids/7') json(res, 200, { schema: AVRO });
      else if (req.url === '/apis/ccompat/v7/schemas/ids/8') json(res, 200, { schemaType: 'PROTOBUF', schema: 'syntax = "proto3";', references: [{ name: 'a.proto', subject: 'a', version: 2 }] });
      else json(res, 404, { error_code: 40403, message: 'Schema not found' });
    });
    const client = new SchemaRegistryClient({ url: server.url });
    try {
      // concurrent reads of one id share one request
      const [a, b] = await Promise.all([client.schemaById(7), client.schemaById(7)]);
      expect(a).to.deep.equal({ id: 7, schemaType: 'AVRO', schema: AVRO, references: [] });
      expect(b).to.equal(a);
      expect(await client.schemaById(7)).to.equal(a);
      expect(await client.schemaById(8)).to.deep.equal({ id: 8, schemaType: 'PROTOBUF', schema: 'syntax = "proto3";', references: [{ name: 'a.proto', subject: 'a', version: 2 }] });
      expect(server.requests.map((r) => r.url)).to.deep.equal(['/apis/ccompat/v7/schemas/ids/7', '/apis/ccompat/v7/schemas/ids/8']);
      expect(client.requests).to.equal(2);
    } finally {
      client.close();
      await server.close();
    }
  });

  it("makes the registry's schema-not-found a record error, retried on the next call (not cached), and a bare 404 a transient fault", async () => {
    let bare = false;
    const server = await registry((_req, res) => (bare ? json(res, 404, { title: 'RESTEASY003210: Could not find resource' }) : json(res, 404, { error_code: 40403, message: 'Schema 9 not found.' })));
    const client = new SchemaRegistryClient({ url: server.url });
    try {
      const missing = await failure(client.schemaById(9));
      expect(missing).to.be.instanceOf(RecordError);
      expect(missing.message).to.equal('schema id 9 is not in the schema registry');
      await failure(client.schemaById(9));
      expect(server.requests).to.have.length(2);
      // a URL that is not the registry's API (no registry error code): dead-lettering for it would lose every record
      bare = true;
      const wrongUrl = await failure(client.schemaById(9));
      expect(wrongUrl).to.be.instanceOf(TransientError);
      expect((wrongUrl as TransientError).source).to.equal('schema-registry');
      expect(wrongUrl.message).to.match(/^schema registry at http:\/\/127\.0\.0\.1:\d+\/apis\/ccompat\/v7: it answered 404 .*SHREDDER_SCHEMA_REGISTRY_URL/);
      expect(await client.latestForSubject('unknown-value').catch((e: Error) => e)).to.be.instanceOf(TransientError);
    } finally {
      client.close();
      await server.close();
    }
  });

  it('retries 5xx and 429 with back-off and then answers', async () => {
    const statuses = [503, 500, 429];
    const server = await registry((_req, res) => {
      const status = statuses.shift();
      if (status) json(res, status, { error_code: status * 100, message: 'busy' });
      else json(res, 200, { subject: 's', version: 3, id: 11, schemaType: 'JSON', schema: '{}' });
    });
    const client = new SchemaRegistryClient({ url: server.url }, { initialBackoffMs: 50 });
    try {
      const started = Date.now();
      expect(await client.latestForSubject('s')).to.deep.equal({ id: 11, schemaType: 'JSON', schema: '{}', references: [], subject: 's', version: 3 });
      expect(server.requests).to.have.length(4);
      expect(Date.now() - started).to.be.at.least(50 + 100 + 200 - 10); // (the back-off doubles)
    } finally {
      client.close();
      await server.close();
    }
  });

  it('gives up on a registry that answers 503, or does not answer, after the bounded retry: a transient fault naming the URL', async function () {
    this.timeout(10_000);
    const cases = [
      [() => registry((_req, res) => json(res, 503, { error_code: 50301, message: 'backend down' })), /it answered HTTP 503, error 50301: backend down \(\d+ attempts in 1500 ms\)/],
      [() => registry(() => undefined), /no answer within \d+ ms/], // accepts, never answers
    ] as const;
    for (const [start, reason] of cases) {
      const server = await start();
      const client = new SchemaRegistryClient({ url: server.url }, { retryForMs: 1500, requestTimeoutMs: 400 });
      try {
        const started = Date.now();
        const error = await failure(client.schemaById(1));
        const elapsed = Date.now() - started;
        expect(error).to.be.instanceOf(TransientError);
        expect(error.message).to.match(reason);
        expect(error.message).to.include(server.url);
        expect(elapsed).to.be.within(1500, 2200); // the whole budget, and not much more
        expect(server.requests.length).to.be.at.least(3);
      } finally {
        client.close();
        await server.close();
      }
    }
  });

  it('sends basic auth, and a refusal names the variables, never the password', async () => {
    const server = await registry((req, res) => {
      if (req.headers.authorization === `Basic ${Buffer.from('shredder:s3cret pw').toString('base64')}`) json(res, 200, { schema: AVRO });
      else json(res, 401, { error_code: 401, message: 'Unauthorized' });
    });
    const good = new SchemaRegistryClient({ url: `${server.url}/`, username: 'shredder', password: 's3cret pw' });
    const bad = new SchemaRegistryClient({ url: server.url, username: 'shredder', password: 'wrong-s3cret' });
    try {
      expect((await good.schemaById(1)).schema).to.equal(AVRO);
      const refused = await failure(bad.schemaById(1));
      expect(refused).to.be.instanceOf(TransientError);
      expect(refused.message).to.match(/refused the credentials .*HTTP 401.*SHREDDER_SCHEMA_REGISTRY_USERNAME/);
      expect(`${refused.message} ${String(refused.stack)}`).to.not.include('wrong-s3cret').and.not.include(Buffer.from('shredder:wrong-s3cret').toString('base64'));
      expect(server.requests).to.have.length(2); // (a refusal is not retried)
    } finally {
      good.close();
      bad.close();
      await server.close();
    }
  });

  describe('over TLS', function () {
    let certs: TestCertificates;
    let url: string;
    let server: Server;
    before(async function () {
      certs = makeTestCertificates();
      server = createHttpsServer({
        cert: readFileSync(certs.serverCertFile),
        key: readFileSync(certs.serverKeyFile),
        ca: readFileSync(certs.caFile),
        requestCert: true,
        rejectUnauthorized: true,
      }, (_req, res) => json(res, 200, { schema: AVRO }));
      url = `https://127.0.0.1:${await listen(server)}`;
    });
    after(async () => {
      await new Promise((r) => server.close(r));
      certs.remove();
    });

    it('trusts the CA file and presents the client certificate', async () => {
      const client = new SchemaRegistryClient({ url, tls: { ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile) } });
      try {
        expect((await client.schemaById(3)).schema).to.equal(AVRO);
      } finally {
        client.close();
      }
    });

    it('fails at once, naming the TLS variables, on a CA that did not sign the certificate', async () => {
      const client = new SchemaRegistryClient({ url, tls: { ca: readFileSync(certs.otherCaFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile) } });
      try {
        const started = Date.now();
        const error = await failure(client.schemaById(3));
        expect(error).to.be.instanceOf(TransientError);
        expect(error.message).to.match(/TLS failed \(.+\): check SHREDDER_SCHEMA_REGISTRY_CA_FILE/);
        expect(client.requests).to.equal(1);
        expect(Date.now() - started).to.be.below(1000);
      } finally {
        client.close();
      }
    });
  });
});
