import { expect } from 'chai';
import { LruCache } from '../../../src/keys/lru-cache.js';

/** The same policy with every eviction taking the map's first entry afresh: what the kept iterator must equal. */
class FirstEntryEviction<K, V> extends LruCache<K, V> {
  protected override evictOldest(): void {
    this.entries.delete(this.entries.keys().next().value as K);
  }
}

/** A small deterministic generator, so that a failure replays. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('LruCache', () => {
  it('evicts the least recently used entry', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.get('a');
    cache.set('c', 3);
    expect(cache.peek('b')).to.equal(undefined);
    expect(cache.peek('a')).to.equal(1);
    expect(cache.size).to.equal(2);
  });

  it('keeps exactly the entries that evicting the first entry of the map each time keeps, through many evictions, uses, deletes and clears', () => {
    for (const capacity of [1, 2, 7, 64]) {
      const next = random(capacity);
      const cache = new LruCache<number, number>(capacity);
      const model = new FirstEntryEviction<number, number>(capacity);
      const keySpace = capacity * 3;
      for (let step = 0; step < 20_000; step++) {
        const key = Math.floor(next() * keySpace);
        const dice = next();
        if (dice < 0.5) {
          cache.set(key, step);
          model.set(key, step);
        } else if (dice < 0.9) {
          expect(cache.get(key)).to.equal(model.get(key));
        } else if (dice < 0.999) {
          cache.delete(key);
          model.delete(key);
        } else {
          cache.clear();
          model.clear();
        }
        expect(cache.size).to.equal(model.size);
      }
      for (let key = 0; key < keySpace; key++) expect(cache.peek(key), `capacity ${capacity}, key ${key}`).to.equal(model.peek(key));
    }
  });

  it('goes on evicting the oldest entry after the map has been filled and emptied many times over (its iterator outlives the rehashes)', () => {
    const cache = new LruCache<number, number>(1000);
    for (let i = 0; i < 50_000; i++) cache.set(i, i);
    expect(cache.size).to.equal(1000);
    for (let i = 0; i < 49_000; i++) expect(cache.peek(i)).to.equal(undefined);
    for (let i = 49_000; i < 50_000; i++) expect(cache.peek(i)).to.equal(i);
  });
});
