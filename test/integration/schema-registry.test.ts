// The registry client against a real Confluent-compatible registry (Apicurio Registry, started by the
// tests from Maven Central; test/support/schema-registry.ts): schemas of the three formats registered
// through the ccompat API with plain HTTP and read back by id, each id fetched once; an unknown id the
// record's fault; a registry that is down a transient fault within the retry bound. And the launcher's
// promise: no registry left behind when its parent dies.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { RecordError, TransientError } from '../../src/errors/shredder-errors.js';
import { SchemaRegistryClient, type SchemaType } from '../../src/schema-registry/client.js';
import { eventually } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';
import { testSchemaRegistry } from '../support/schema-registry.js';

const run = `${process.pid}-${Date.now()}`; // (subjects of their own, should SCHEMA_REGISTRY_URL be a shared registry)

const AVRO = JSON.stringify({
  type: 'record',
  name: 'Customer',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'email', type: 'string', 'confluent:tags': ['PII'] },
    { name: 'address', type: ['null', { type: 'record', name: 'Address', fields: [{ name: 'street', type: 'string' }] }], default: null },
  ],
});
const PROTOBUF = `syntax = "proto3";
package shop;

message Customer {
  string id = 1;
  string email = 2;
  message Address { string street = 1; }
  Address address = 3;
}
`;
const JSON_SCHEMA = JSON.stringify({
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: { id: { type: 'string' }, email: { type: 'string', 'confluent:tags': ['PII'] } },
  required: ['id'],
});

/** Registers `schema` under `subject` through the ccompat API, as a producer's serializer does; its id. */
async function register(url: string, subject: string, schemaType: SchemaType, schema: string, references?: unknown[]): Promise<number> {
  const response = await fetch(`${url}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    // (Confluent's serializers leave schemaType out for Avro)
    body: JSON.stringify({ schema, ...(schemaType === 'AVRO' ? {} : { schemaType }), ...(references ? { references } : {}) }),
  });
  const body = (await response.json()) as { id?: number };
  expect(response.status, JSON.stringify(body)).to.equal(200);
  return body.id!;
}

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(() => { throw new Error('expected a rejection'); }, (err: Error) => err);
}

describe('schema registry client against Apicurio Registry', function () {
  let url: string;
  before(async function () {
    url = await testSchemaRegistry(this);
  });

  it('reads Avro, Protobuf and JSON schemas back by id as registered, one request per id', async () => {
    const ids = {
      AVRO: await register(url, `customers-avro-${run}-value`, 'AVRO', AVRO),
      PROTOBUF: await register(url, `customers-proto-${run}-value`, 'PROTOBUF', PROTOBUF),
      JSON: await register(url, `customers-json-${run}-value`, 'JSON', JSON_SCHEMA),
    };
    expect(new Set(Object.values(ids)).size).to.equal(3);
    const client = new SchemaRegistryClient({ url });
    try {
      for (const [schemaType, schema] of [['AVRO', AVRO], ['PROTOBUF', PROTOBUF], ['JSON', JSON_SCHEMA]] as const) {
        // the schema text as registered, confluent:tags kept (what field selection by tag will read)
        expect(await client.schemaById(ids[schemaType])).to.deep.equal({ id: ids[schemaType], schemaType, schema, references: [] });
      }
      expect(client.requests).to.equal(3);
      for (const id of Object.values(ids)) await client.schemaById(id);
      expect(client.requests).to.equal(3); // every id from the cache
    } finally {
      client.close();
    }
  });

  it('reads a Protobuf schema that imports another, with its reference', async () => {
    const common = 'syntax = "proto3";\npackage common;\nmessage Address { string street = 1; }\n';
    const commonSubject = `common-${run}`;
    await register(url, commonSubject, 'PROTOBUF', common);
    const order = 'syntax = "proto3";\npackage shop;\nimport "common.proto";\nmessage Order { string id = 1; common.Address ship_to = 2; }\n';
    const id = await register(url, `orders-${run}-value`, 'PROTOBUF', order, [{ name: 'common.proto', subject: commonSubject, version: 1 }]);
    const client = new SchemaRegistryClient({ url });
    try {
      expect(await client.schemaById(id)).to.deep.equal({
        id,
        schemaType: 'PROTOBUF',
        schema: order,
        references: [{ name: 'common.proto', subject: commonSubject, version: 1 }],
      });
    } finally {
      client.close();
    }
  });

  it("gives a subject's latest version after an evolution, and undefined for a subject that does not exist", async () => {
    const subject = `evolving-${run}-value`;
    const v1 = await register(url, subject, 'AVRO', AVRO);
    const evolved = JSON.stringify({ ...JSON.parse(AVRO), fields: [...(JSON.parse(AVRO) as { fields: unknown[] }).fields, { name: 'phone', type: ['null', 'string'], default: null }] });
    const v2 = await register(url, subject, 'AVRO', evolved);
    expect(v2).to.not.equal(v1);
    const client = new SchemaRegistryClient({ url });
    try {
      expect(await client.latestForSubject(subject)).to.deep.equal({ id: v2, schemaType: 'AVRO', schema: evolved, references: [], subject, version: 2 });
      expect(await client.latestForSubject(`no-such-subject-${run}`)).to.equal(undefined);
      // the old version's id still reads: records written before the evolution stay readable
      expect((await client.schemaById(v1)).schema).to.equal(AVRO);
    } finally {
      client.close();
    }
  });

  it("makes an id the registry does not have the record's fault, asked again each time", async () => {
    const client = new SchemaRegistryClient({ url });
    try {
      const error = await rejection(client.schemaById(0x7ffffff0));
      expect(error).to.be.instanceOf(RecordError);
      expect(error.message).to.equal(`schema id ${0x7ffffff0} is not in the schema registry`);
      await rejection(client.schemaById(0x7ffffff0));
      expect(client.requests).to.equal(2); // (not cached: it may be registered yet)
    } finally {
      client.close();
    }
  });

  it('a registry whose launcher is killed goes away with it; a client keeps what it read, and reports the registry down', async function () {
    if (process.env.SCHEMA_REGISTRY_URL) {
      console.log('      (skipped: SCHEMA_REGISTRY_URL is set, and this tests the local launcher)');
      this.skip();
    }
    this.timeout(120_000);
    const launcher = `
      import { LocalSchemaRegistry } from ${JSON.stringify(join(repoRoot(), 'dist/src/dev/schema-registry/index.js'))};
      const registry = new LocalSchemaRegistry();
      await registry.start();
      console.log(JSON.stringify({ url: registry.url, pid: registry.processId }));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', launcher], { stdio: ['ignore', 'pipe', 'inherit'] });
    const started = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]) as { url: string; pid: number });
      });
      child.on('exit', (code) => reject(new Error(`launcher exited with ${code} before the registry started`)));
    });
    const id = await register(started.url, `doomed-${run}-value`, 'AVRO', AVRO);
    const client = new SchemaRegistryClient({ url: started.url }, { retryForMs: 1500 });
    try {
      expect((await client.schemaById(id)).schema).to.equal(AVRO);
      child.kill('SIGKILL');
      await eventually('the registry to stop answering', async () => {
        try {
          await fetch(`${started.url}/subjects`, { signal: AbortSignal.timeout(1000) });
          return false;
        } catch {
          return true;
        }
      }, 30_000, 200);
      await eventually('its supervisor to exit', async () => {
        try {
          process.kill(started.pid, 0);
          return false;
        } catch {
          return true;
        }
      }, 30_000, 200);
      expect(existsSync(`/proc/${started.pid}`)).to.equal(false);
      expect((await client.schemaById(id)).schema).to.equal(AVRO); // ids are immutable: the cache stands
      const error = await rejection(client.schemaById(id + 1));
      expect(error).to.be.instanceOf(TransientError);
      expect(error.message).to.match(/cannot connect \(ECONNREFUSED\)/);
    } finally {
      client.close();
      child.kill('SIGKILL');
    }
  });
});

describe('schema registry client without a registry', () => {
  it('reports a registry that is not there as a transient fault naming its URL, after the bounded retry', async () => {
    const port = await closedPort();
    const down = `http://127.0.0.1:${port}/apis/ccompat/v7`;
    const client = new SchemaRegistryClient({ url: down, username: 'shredder', password: 'hunter2' }, { retryForMs: 2000 });
    try {
      const started = Date.now();
      const error = await rejection(client.schemaById(1));
      const elapsed = Date.now() - started;
      expect(error).to.be.instanceOf(TransientError);
      expect((error as TransientError).source).to.equal('schema-registry');
      expect(error.message).to.match(new RegExp(`^schema registry at ${down.replace(/[./]/g, '\\$&')}: cannot connect \\(ECONNREFUSED\\) \\(\\d+ attempts in 2000 ms\\)$`));
      expect(error.message).to.not.include('hunter2');
      expect(elapsed).to.be.within(2000, 3000);
      expect(client.requests).to.be.within(4, 8); // back-off 100, 200, 400, 800 ms, then the rest of the 2 s
    } finally {
      client.close();
    }
  });
});
