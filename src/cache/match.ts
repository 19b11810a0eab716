import type { CacheRecord } from './config.ts';
import type { CacheGraph, GraphResult } from './graph.ts';
import type { CacheKey } from './key.ts';

/** A cache a {@link CacheKeyStore} is built from: a name and a graph (a `CacheSource` fits). */
export interface KeyStoreSource {
  readonly name: string;
  readonly graph: CacheGraph;
}

/** A record of an imported cache, as BuildKit's importer holds it (an "item"). */
export interface CacheItem<S extends KeyStoreSource = KeyStoreSource> {
  readonly source: S;
  /** Index of the record in the source's config. */
  readonly record: number;
  readonly digest: string;
  /**
   * The result BuildKit's importer keeps for the record: the last one it parses (`results`, then
   * `chains`) among those whose every blob the cache manifest lists. Undefined when none.
   */
  readonly result: GraphResult | undefined;
}

/**
 * The cache keys of one or several imported caches, walked as BuildKit's solver walks the key
 * storage its remote-cache importer builds (`cache/remotecache/v1/cachestorage.go`):
 * - a key without inputs matches the records without inputs that carry its digest;
 * - a key with inputs matches, for each input `i`, the records that a record matched by one of
 *   that input's keys links to with input index `i`, this key's digest and the same selector;
 *   the key matches the records every input reaches.
 * Several caches are searched side by side, as BuildKit combines `--cache-from` imports; a link
 * never crosses from one cache to another. Lookups are memoised per key object: matching every
 * key of a build costs O(records + links) overall.
 */
export class CacheKeyStore<S extends KeyStoreSource = KeyStoreSource> {
  readonly sources: readonly S[];
  /** Records without inputs, by digest (BuildKit gives them the digest as their id). */
  readonly #roots = new Map<string, CacheItem<S>[]>();
  /** All records by digest, with or without inputs. */
  readonly #byDigest = new Map<string, CacheItem<S>[]>();
  /** Outgoing links: from a record to the records using it, by input index, digest, selector. */
  readonly #links = new Map<CacheItem<S>, Map<string, CacheItem<S>[]>>();
  readonly #matched = new WeakMap<CacheKey, readonly CacheItem<S>[]>();

  constructor(sources: readonly S[]) {
    this.sources = sources;
    for (const source of sources) this.#add(source);
  }

  /** The records `key` reaches, in every cache (BuildKit's `Query` over combined imports). */
  match(key: CacheKey): readonly CacheItem<S>[] {
    const known = this.#matched.get(key);
    if (known) return known;
    // Post-order over the key's inputs without recursion: keys of long builds nest deeply.
    const stack: CacheKey[] = [key];
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as CacheKey;
      if (this.#matched.has(top)) {
        stack.pop();
        continue;
      }
      const pending = top.inputs.flatMap((group) =>
        group.filter((input) => !this.#matched.has(input.key)).map((input) => input.key),
      );
      if (pending.length > 0) {
        stack.push(...pending);
        continue;
      }
      stack.pop();
      this.#matched.set(top, this.#matchInputs(top));
    }
    return this.#matched.get(key) as readonly CacheItem<S>[];
  }

  /**
   * Per input of `key`, the records that input alone reaches (the keys of the input matched,
   * then followed along links with this key's digest and the link's selector).
   */
  matchInput(key: CacheKey, input: number): readonly CacheItem<S>[] {
    const group = key.inputs[input] ?? [];
    const found = new Set<CacheItem<S>>();
    for (const alternative of group) {
      for (const from of this.match(alternative.key)) {
        for (const target of this.linksFrom(from, input, key.digest, alternative.selector)) {
          found.add(target);
        }
      }
    }
    return [...found];
  }

  /** The records `from` links to with input `input`, digest `digest` and `selector`. */
  linksFrom(
    from: CacheItem<S>,
    input: number,
    digest: string,
    selector: string | undefined,
  ): readonly CacheItem<S>[] {
    return this.#links.get(from)?.get(linkKey(input, digest, selector)) ?? [];
  }

  /** Every record of the caches with this digest, whatever its inputs. */
  withDigest(digest: string): readonly CacheItem<S>[] {
    return this.#byDigest.get(digest.toLowerCase()) ?? [];
  }

  /** The selectors with which `from` links to records with `digest` through input `input`. */
  selectorsFrom(from: CacheItem<S>, input: number, digest: string): string[] {
    const prefix = `${input} ${digest.toLowerCase()} `;
    const selectors: string[] = [];
    for (const key of this.#links.get(from)?.keys() ?? []) {
      if (key.startsWith(prefix)) selectors.push(key.slice(prefix.length));
    }
    return selectors;
  }

  #add(source: S): void {
    const { records } = source.graph.config;
    const items = records.map(
      (record, index): CacheItem<S> => new StoredItem(source, index, record.digest.toLowerCase()),
    );
    items.forEach((item, index) => {
      const record = records[index] as CacheRecord;
      push(this.#byDigest, item.digest, item);
      if (record.inputs.length === 0) push(this.#roots, item.digest, item);
      record.inputs.forEach((group, input) => {
        for (const link of group) {
          const from = items[link.link] as CacheItem<S>;
          let links = this.#links.get(from);
          if (!links) {
            links = new Map();
            this.#links.set(from, links);
          }
          push(links, linkKey(input, item.digest, link.selector), item);
        }
      });
    });
  }

  #matchInputs(key: CacheKey): readonly CacheItem<S>[] {
    if (key.inputs.length === 0) return this.#roots.get(key.digest.toLowerCase()) ?? [];
    let found: Set<CacheItem<S>> | undefined;
    for (let input = 0; input < key.inputs.length; input++) {
      const reached = this.matchInput(key, input);
      found = found
        ? new Set(reached.filter((item) => (found as Set<CacheItem<S>>).has(item)))
        : new Set(reached);
      if (found.size === 0) return [];
    }
    return [...(found ?? [])];
  }
}

/** A record of an imported cache; its result's layer chain is worked out on first use. */
class StoredItem<S extends KeyStoreSource> implements CacheItem<S> {
  readonly source: S;
  readonly record: number;
  readonly digest: string;
  #result: GraphResult | undefined | null = null;

  constructor(source: S, record: number, digest: string) {
    this.source = source;
    this.record = record;
    this.digest = digest;
  }

  /**
   * The importer keeps one result per record: each it parses replaces the one before, `results`
   * first, then `chains` (written by BuildKit v0.10 and later; v0.8 ignores them).
   */
  get result(): GraphResult | undefined {
    if (this.#result === null) this.#result = this.source.graph.resultsOf(this.record).at(-1);
    return this.#result;
  }
}

function linkKey(input: number, digest: string, selector: string | undefined): string {
  return `${input} ${digest.toLowerCase()} ${selector ?? ''}`;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
