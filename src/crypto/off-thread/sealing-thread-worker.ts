// The sealing thread's side (see sealing-thread.ts): its own instance of the WebAssembly core seals
// each packed run in place, over its plaintexts, and the packed buffer goes back with its key table
// and associated data wiped: the envelopes are views of it until the batch is released. A span run
// (span-envelopes.ts) is sealed into its out area, and goes back with its key table and span wiped.
import { parentPort } from 'node:worker_threads';
import { loadPackedSealer } from '../crypto-core.js';
import { packedView, wipePackedSecrets } from './packed-envelopes.js';
import type { SealReply, SealRequest } from './sealing-thread.js';
import { wipeSpanSecrets } from './span-envelopes.js';

if (!parentPort) throw new Error('sealing-thread-worker.js runs as a worker thread only');
const port = parentPort;
const core = await loadPackedSealer();

port.on('message', (request: SealRequest) => {
  const { id, buffer } = request;
  const started = process.hrtime.bigint();
  let reply: SealReply;
  try {
    if (request.span) {
      core.sealSpanRun(new Uint8Array(buffer), request.layout);
      wipeSpanSecrets(buffer, request.layout);
    } else {
      core.sealPacked(packedView(buffer, request.layout));
      wipePackedSecrets(buffer, request.layout);
    }
    reply = { id, buffer, sealed: true, ns: Number(process.hrtime.bigint() - started) };
    port.postMessage(reply, [buffer]);
  } catch (err) {
    new Uint8Array(buffer).fill(0); // plaintexts included: nothing of a failed run goes back
    reply = { id, buffer, error: (err as Error).message, ns: Number(process.hrtime.bigint() - started) };
    port.postMessage(reply, [buffer]);
  }
});
