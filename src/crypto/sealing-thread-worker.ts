// The sealing thread's side (see sealing-thread.ts): its own instance of the WebAssembly core seals
// each packed run in place, over its plaintexts, and the packed buffer goes back with its key table
// and associated data wiped: the envelopes are views of it until the batch is released.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { loadPackedSealer } from './crypto-core.js';
import { packedView, wipePackedSecrets } from './packed-envelopes.js';
import type { SealReply, SealRequest } from './sealing-thread.js';

if (!parentPort) throw new Error('sealing-thread-worker.js runs as a worker thread only');
/** How much lower the sealing thread's priority is than the process's (in niceness, up to 19, the lowest). */
const NICENESS_BELOW_PROCESS = 10;
const port = parentPort;
lowerThisThreadsPriority();
const core = await loadPackedSealer();

port.on('message', ({ id, buffer, layout }: SealRequest) => {
  const started = process.hrtime.bigint();
  let reply: SealReply;
  try {
    core.sealPacked(packedView(buffer, layout));
    wipePackedSecrets(buffer, layout);
    reply = { id, buffer, sealed: true, ns: Number(process.hrtime.bigint() - started) };
    port.postMessage(reply, [buffer]);
  } catch (err) {
    new Uint8Array(buffer).fill(0); // plaintexts included: nothing of a failed run goes back
    reply = { id, buffer, error: (err as Error).message, ns: Number(process.hrtime.bigint() - started) };
    port.postMessage(reply, [buffer]);
  }
});

/**
 * The thread takes CPU time only when no other thread wants it. The main thread bounds throughput and
 * the cipher needs a few percent of a core, but at equal priority the thread competes with kafkajs's
 * main thread (and with anything else on the machine) for the cores. Linux only (setpriority on a
 * thread id); elsewhere, and when refused, the thread keeps the process's priority.
 */
function lowerThisThreadsPriority(): void {
  try {
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(threadId) && threadId > 0) setPriority(threadId, Math.min(19, getPriority(threadId) + NICENESS_BELOW_PROCESS));
  } catch {
    // (not Linux, or not allowed: the default priority)
  }
}
