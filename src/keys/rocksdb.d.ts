// Just the part of the `rocksdb` package (abstract-leveldown 7 callback API) that the key store uses.
declare module 'rocksdb' {
  type Callback<T = void> = (err: Error | undefined, result: T) => void;
  export interface BatchOperation {
    type: 'put' | 'del';
    key: Buffer;
    value?: Buffer;
  }
  export interface RocksDB {
    open(options: { createIfMissing?: boolean; errorIfExists?: boolean }, callback: Callback): void;
    close(callback: Callback): void;
    get(key: Buffer, options: { asBuffer: true }, callback: Callback<Buffer>): void;
    getMany(keys: Buffer[], options: { asBuffer: true }, callback: Callback<(Buffer | undefined)[]>): void;
    batch(operations: BatchOperation[], options: { sync?: boolean }, callback: Callback): void;
    /** A chained batch: each put() hands its key and value to RocksDB's write batch at once (copied). */
    batch(): ChainedBatch;
    compactRange(start: Buffer, end: Buffer, callback: Callback): void;
    clear(options: Record<string, never>, callback: Callback): void;
    iterator(options: { gt?: Buffer; gte?: Buffer; lt?: Buffer; limit?: number; keyAsBuffer: true; valueAsBuffer: true }): Iterator;
  }
  export interface ChainedBatch {
    put(key: Buffer, value: Buffer): ChainedBatch;
    del(key: Buffer): ChainedBatch;
    write(options: { sync?: boolean }, callback: Callback): void;
  }
  export interface Iterator {
    /** Calls back with no key and no value past the end. */
    next(callback: (err: Error | undefined, key?: Buffer, value?: Buffer) => void): void;
    end(callback: Callback): void;
  }
  interface RocksDBConstructor {
    (location: string): RocksDB;
    destroy(location: string, callback: Callback): void;
  }
  const rocksdb: RocksDBConstructor;
  export default rocksdb;
}
