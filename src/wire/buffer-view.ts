// A Buffer over the same memory as a Uint8Array (no copy), for the node APIs and encoders that take only
// Buffers: the byte arrays this product passes around are views of fetches, arenas and slabs, and a
// copy of each would cost more than what is done with it.

/** `bytes` itself when it is a Buffer, else a Buffer view of its memory. */
export function bufferView(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
