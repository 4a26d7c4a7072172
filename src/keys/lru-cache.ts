/**
 * A bounded map that evicts a least recently used entry. Map keeps insertion order, so moving an entry
 * to the end marks it used; that move (a delete and a set) is skipped while the entry is still in the
 * most recent quarter of the order, which keeps a hot entry's lookups to one hash probe.
 *
 * Evictions take the oldest entry through one iterator kept from one eviction to the next. A new
 * iterator per eviction (`keys().next()`) starts at the front of the map's table, where every entry
 * deleted since its last rehash still lies as a hole: in a full cache of new subjects, each eviction
 * walked tens of thousands of them. The kept iterator has passed them all, and everything before its
 * position has been evicted (entries used since were moved behind it), so its next entry is the oldest.
 */
export class LruCache<K, V> {
  protected readonly entries = new Map<K, { value: V; usedAt: number }>();
  private clock = 0;
  private readonly freshFor: number;
  private oldest: IterableIterator<K> | undefined;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('cache capacity must be at least 1');
    this.freshFor = Math.floor(capacity / 4);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (this.clock - entry.usedAt >= this.freshFor) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      entry.usedAt = this.clock++;
    }
    return entry.value;
  }

  /** The value without marking it used (for repeated lookups right after get()). */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, usedAt: this.clock++ });
    if (this.entries.size > this.capacity) this.evictOldest();
  }

  protected evictOldest(): void {
    let next = this.oldest?.next();
    if (next === undefined || next.done === true) {
      // (an iterator that reached the end stays done, whatever is added since: start one at the front)
      this.oldest = this.entries.keys();
      next = this.oldest.next();
    }
    this.entries.delete(next.value as K);
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
    this.oldest = undefined;
  }
}
