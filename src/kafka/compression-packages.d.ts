// Just the parts of the untyped compression packages that src/kafka/compression.ts uses.
declare module 'kafkajs-snappy' {
  interface SnappyCodec {
    compress(encoder: { buffer: Buffer }): Promise<Buffer>;
    decompress(buffer: Buffer): Promise<Buffer>;
  }
  const snappyCodec: () => SnappyCodec;
  export default snappyCodec;
}

declare module 'lz4js' {
  interface Lz4js {
    /** Decompresses the LZ4 block src[sIndex, sIndex + sLength) into dst from dIndex; returns the index after its bytes. */
    decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
  }
  const lz4js: Lz4js;
  export default lz4js;
}
