// Small fixed-size memory helpers. memory.fill / memory.copy compile to calls out of the generated
// code in V8, which costs more than the work for a few dozen bytes; these inline to plain stores.

/** Zeroes n bytes at p, n a multiple of 16 (p need not be aligned). */
@inline export function zero(p: usize, n: usize): void {
  const z = i64x2.splat(0);
  for (let i: usize = 0; i < n; i += 16) v128.store(p + i, z);
}

/** Copies n bytes, n small (an envelope header): a byte loop, like the others here. */
@inline export function copyBytes(dst: usize, src: usize, n: usize): void {
  for (let i: usize = 0; i < n; i++) store<u8>(dst + i, load<u8>(src + i));
}

/** Copies n < 16 bytes (a segment's ragged end) into a block that the caller zeroed. */
@inline export function copyShort(dst: usize, src: usize, n: usize): void {
  let i: usize = 0;
  if (n >= 8) {
    store<u64>(dst, load<u64>(src));
    i = 8;
  }
  for (; i < n; i++) store<u8>(dst + i, load<u8>(src + i));
}
