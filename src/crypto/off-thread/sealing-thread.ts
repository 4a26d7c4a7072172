// Seals large envelope batches of the WebAssembly core's algorithm on a worker thread. A processor's
// throughput is bounded by its main thread, which also runs kafkajs for every partition (decoding
// fetches, encoding produce requests), while the other core has time to spare: on this thread a large
// batch costs only its packing (one copy of each plaintext) and a view per sealed envelope, and the
// main thread goes on with other partitions' batches while the cipher runs.
// The envelopes are views of the packed buffers they were sealed in, and those buffers are reused
// once the caller releases the batch (its records written), instead of new memory for every run's
// envelopes, copied on the worker: less garbage per batch.
// Small batches stay on the main thread (see SEALING_THREAD_MIN_BYTES): the round trip would be most of
// their latency. Keys cross to the thread inside the packed buffer and are wiped there.
import { Worker } from 'node:worker_threads';
import { CHACHA20_POLY1305, type AlgorithmId } from '../aead-algorithms.js';
import { NONCE_BYTES, TAG_BYTES } from '../aead-items.js';
import { checkEnvelopeSealBatchArrays, type EnvelopeSealBatch } from '../envelope-batch.js';
import { keyTableWords, packRun, type PackedLayout } from './packed-envelopes.js';
import { packSpanRun, type SpanBatch, type SpanRunLayout } from './span-envelopes.js';

/** A packed run (or a span run) on its way to the thread (the buffer is moved, not copied). */
export type SealRequest = { id: number; buffer: ArrayBuffer } & ({ span?: undefined; layout: PackedLayout } | { span: true; layout: SpanRunLayout });

/**
 * The packed buffer back, its items sealed in place (their envelopes back to back from
 * layout.dataAt), its key table and associated data wiped; or the reason it could not be sealed (the
 * buffer zeroed).
 */
export interface SealReply {
  id: number;
  buffer: ArrayBuffer;
  sealed?: true;
  error?: string;
  /** Time the thread spent on the run. */
  ns: number;
}

/**
 * Envelope batches with at least this many plaintext bytes go to the thread: sealing them takes
 * several times the round trip to the worker. Below it (every batch at steady low rates) they are
 * sealed in-thread, where the round trip would be most of the batch's latency.
 */
export const SEALING_THREAD_MIN_BYTES = 64 * 1024;

/**
 * A batch goes to the thread in runs of about this many bytes of envelopes: the thread seals one run
 * while the main thread packs the next, and a run's buffer stays in the CPU's cache while it is packed.
 */
const RUN_BYTES = 256 * 1024;
/** Size of a pooled packed buffer: a run, its item words, associated data and keys. */
const POOLED_BUFFER_BYTES = 512 * 1024;
/** Buffers kept for reuse (16 MiB): a 4 MiB batch takes 16, and several partitions' batches are in flight. */
const POOLED_BUFFERS = 32;
/**
 * After this many threads in a row failed without sealing anything (a worker that cannot start, or
 * dies at once), batches are sealed in-thread for good rather than failing over and over.
 */
const FAILED_THREADS_LIMIT = 3;

export interface ThreadSealed {
  envelopes: Buffer[];
  /** Time the thread spent sealing (not the wait for it). */
  ns: number;
  /**
   * Gives the envelopes' memory back for reuse: call it once they are written (read no more). It
   * detaches them: from then on they are empty, never another batch's data.
   */
  release: () => void;
}

interface Pending {
  resolve: (run: { buffer: ArrayBuffer; ns: number }) => void;
  reject: (error: Error) => void;
}

export class SealingThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  /** Packed buffers released (their envelopes detached) or back from a failed run (zeroed), for the next runs. */
  private readonly pool: ArrayBuffer[] = [];
  private nextId = 0;
  private closed = false;
  /** Threads in a row that failed before sealing a run. */
  private failedThreads = 0;
  private sealedByThisThread = false;

  /** @param workerFile the worker's module (tests replace it) */
  constructor(private readonly workerFile: URL = new URL('./sealing-thread-worker.js', import.meta.url)) {}

  /** Whether a batch of this algorithm and size is sealed on the thread rather than in-thread. */
  takes(algorithm: AlgorithmId, plaintextBytes: number): boolean {
    return this.usable && algorithm === CHACHA20_POLY1305 && plaintextBytes >= SEALING_THREAD_MIN_BYTES;
  }

  /** False once closed, or once FAILED_THREADS_LIMIT threads in a row failed (then all is sealed in-thread). */
  get usable(): boolean {
    return !this.closed && this.failedThreads < FAILED_THREADS_LIMIT;
  }

  /**
   * Seals the batch on the thread: the same envelopes as the core's sealEnvelopes. Throws at once on a
   * malformed batch (its items are checked as they are packed); everything is copied before it
   * returns, so the caller may wipe its arena then.
   */
  sealEnvelopes(batch: EnvelopeSealBatch): Promise<ThreadSealed> {
    const worker = this.startedWorker();
    if (worker instanceof Error) return Promise.reject(worker);
    const count = checkEnvelopeSealBatchArrays(batch);
    const { plaintexts } = batch;
    const overhead = batch.prefixBytes + NONCE_BYTES + TAG_BYTES;
    const envelopes = new Array<Buffer>(count);
    const localKey = new Int32Array(batch.keys.length).fill(-1);
    const keyWords = keyTableWords(batch.keys);
    const runs: Promise<{ buffer: ArrayBuffer; ns: number }>[] = [];
    try {
      for (let start = 0; start < count;) {
        const { buffer, layout } = packRun(batch, start, RUN_BYTES, (n) => this.takeBuffer(n), keyWords, localKey);
        const first = start;
        const end = start + layout.count;
        start = end;
        runs.push(this.post(worker, { id: 0, buffer, layout }).then((run) => {
          for (let i = first, at = layout.dataAt; i < end; i++) {
            const length = overhead + plaintexts[i].length;
            envelopes[i] = Buffer.from(run.buffer, at, length);
            at += length;
          }
          return run;
        }));
      }
    } catch (err) {
      // a malformed item: the runs before it are sealed for nothing, and their outcome is not awaited
      for (const run of runs) run.catch(() => undefined); // (their batch fails with err below)
      throw err;
    } finally {
      keyWords.fill(0); // (the keys stay only in the packed buffers, wiped on the thread)
    }
    return this.whenSealed(runs, envelopes);
  }

  /**
   * Seals a span batch (see span-envelopes.ts) on the thread: the same envelopes as sealEnvelopes
   * would make of its items, every one under its own fresh nonce. Each run is copied into its buffer
   * (one copy of its span) before this returns, so the caller may let go of the records' bytes then.
   */
  sealSpans(batch: SpanBatch): Promise<ThreadSealed> {
    const worker = this.startedWorker();
    if (worker instanceof Error) return Promise.reject(worker);
    const overhead = batch.prefixBytes + NONCE_BYTES + TAG_BYTES;
    const envelopes = new Array<Buffer>(batch.count);
    const runs = batch.runs.map((run) => {
      const { buffer, layout } = packSpanRun(batch, run, (n) => this.takeBuffer(n));
      return this.post(worker, { id: 0, buffer, layout, span: true }).then((sealed) => {
        const end = run.first + run.count;
        for (let i = run.first, at = layout.outAt; i < end; i++) {
          const length = overhead + batch.textLength(i);
          envelopes[i] = Buffer.from(sealed.buffer, at, length);
          at += length;
        }
        return sealed;
      });
    });
    return this.whenSealed(runs, envelopes);
  }

  /** The envelopes once every run is back, and how to give the runs' buffers back for reuse. */
  private whenSealed(runs: Promise<{ buffer: ArrayBuffer; ns: number }>[], envelopes: Buffer[]): Promise<ThreadSealed> {
    return Promise.all(runs).then((sealed) => {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        for (const { buffer } of sealed) this.reuse(buffer);
      };
      return { envelopes, ns: sealed.reduce((sum, run) => sum + run.ns, 0), release };
    });
  }

  /** Ends the thread; batches still on it are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new Error('the sealing thread was closed'));
    await worker?.terminate();
  }

  /** The thread's worker, started if there is none; the error when closed or it cannot start (a failed thread). */
  private startedWorker(): Worker | Error {
    if (this.closed) return new Error('the sealing thread is closed');
    try {
      return this.worker ?? this.spawn();
    } catch (err) {
      this.failedThreads++;
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  private spawn(): Worker {
    const worker = new Worker(this.workerFile);
    worker.unref();
    this.sealedByThisThread = false;
    // (a failed thread fails the batches on it; the next batch starts a new one)
    const fail = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failedThreads = this.sealedByThisThread ? 1 : this.failedThreads + 1;
      this.failAll(error);
    };
    worker.on('message', (reply: SealReply) => this.settle(reply));
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the sealing thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  /** Sends a run (its id assigned here) to the thread. */
  private post(worker: Worker, request: SealRequest): Promise<{ buffer: ArrayBuffer; ns: number }> {
    const id = (request.id = this.nextId++);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref(); // (idle, the thread does not keep the process alive)
      worker.postMessage(request, [request.buffer]);
    });
  }

  private settle({ id, buffer, sealed, error, ns }: SealReply): void {
    const request = this.pending.get(id);
    if (!sealed || !request) this.reuse(buffer); // (zeroed by the thread, or nobody waits for it)
    if (!request) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker?.unref();
    if (!sealed) {
      request.reject(new Error(`the sealing thread could not seal a batch: ${error}`));
      return;
    }
    this.sealedByThisThread = true;
    this.failedThreads = 0;
    request.resolve({ buffer, ns });
  }

  /**
   * Keeps a packed buffer for the next runs, detached first (moved to a new ArrayBuffer object, the
   * memory not copied): any view still held of it, an envelope of a released batch, is empty from now
   * on, so it can never show the plaintexts packed into the buffer next.
   */
  private reuse(buffer: ArrayBuffer): void {
    if (this.pool.length >= POOLED_BUFFERS || buffer.byteLength !== POOLED_BUFFER_BYTES) return;
    this.pool.push(structuredClone(buffer, { transfer: [buffer] }));
  }

  /** A packed buffer of at least `bytes`: a pooled one when a run fits (the usual case). */
  private takeBuffer(bytes: number): ArrayBuffer {
    if (bytes > POOLED_BUFFER_BYTES) return new ArrayBuffer(bytes);
    return this.pool.pop() ?? new ArrayBuffer(POOLED_BUFFER_BYTES);
  }

  private failAll(error: Error): void {
    const requests = [...this.pending.values()];
    this.pending.clear();
    for (const request of requests) request.reject(error);
  }
}
