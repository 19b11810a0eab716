import { LRUCache } from 'lru-cache';

/** Options of {@link BlobLocations}. */
export interface BlobLocationsOptions {
  /** Digests remembered, those used longest ago forgotten beyond it; default 50 000. */
  maxDigests?: number;
  /** Repositories remembered per digest and host, the earliest learnt forgotten beyond it; default 32. */
  maxRepositories?: number;
}

/**
 * Where blobs are known to live: digest -> registry host -> repositories. This is the idea of
 * BuildKit's `containerd.io/distribution.source.<host>` label, kept in memory and never pushed.
 * The copy engine asks it which repository on the target's host to mount a blob from, and
 * records every repository it pushed to, so a later copy on that host mounts instead of
 * uploading. Bounded, so that a long-running process can keep one: a digest forgotten only
 * costs an upload instead of a mount.
 */
export class BlobLocations {
  readonly #byDigest: LRUCache<string, Map<string, Set<string>>>;
  readonly #maxRepositories: number;

  constructor(options: BlobLocationsOptions = {}) {
    const { maxDigests = 50_000, maxRepositories = 32 } = options;
    // maxSize rather than max: lru-cache allocates `max` slots up front.
    this.#byDigest = new LRUCache({ maxSize: maxDigests, sizeCalculation: () => 1 });
    this.#maxRepositories = maxRepositories;
  }

  /** Digests known now. */
  get size(): number {
    return this.#byDigest.size;
  }

  /** Record that `digest` exists in `repository` on `registry`. */
  add(digest: string, registry: string, repository: string): void {
    let hosts = this.#byDigest.get(digest);
    if (!hosts) {
      hosts = new Map();
      this.#byDigest.set(digest, hosts);
    }
    let repositories = hosts.get(registry);
    if (!repositories) {
      repositories = new Set();
      hosts.set(registry, repositories);
    }
    repositories.add(repository);
    if (repositories.size > this.#maxRepositories) {
      const [earliest] = repositories;
      if (earliest !== undefined) repositories.delete(earliest);
    }
  }

  /** Copy every entry of `other` into this one. */
  merge(other: BlobLocations): void {
    // Least recently used first, so that the other's recency order carries over.
    for (const digest of other.#byDigest.rkeys()) {
      for (const [registry, repositories] of other.#byDigest.peek(digest) ?? []) {
        for (const repository of repositories) this.add(digest, registry, repository);
      }
    }
  }

  /** Repositories on `registry` known to hold `digest`, in the order they were learnt. */
  repositories(digest: string, registry: string): string[] {
    return [...(this.#byDigest.get(digest)?.get(registry) ?? [])];
  }

  /** `host -> repositories` for one digest (a copy). */
  locationsOf(digest: string): Map<string, string[]> {
    const hosts = this.#byDigest.get(digest) ?? new Map<string, Set<string>>();
    return new Map([...hosts].map(([host, repos]) => [host, [...repos]]));
  }

  /** @deprecated Use {@link locationsOf}. */
  sourcesOf(digest: string): Map<string, string[]> {
    return this.locationsOf(digest);
  }

  /**
   * The best repository to mount `digest` from into `target` on `registry`: the candidate
   * sharing the longest common path prefix with the target (ties go to the one learnt last, as
   * containerd does); never the target itself. Undefined when none is known on that host.
   */
  mountFrom(digest: string, registry: string, target: string): string | undefined {
    let best: string | undefined;
    let bestLength = -1;
    for (const candidate of this.repositories(digest, registry)) {
      if (candidate === target) continue;
      const length = commonPrefixComponents(candidate, target);
      if (length >= bestLength) {
        best = candidate;
        bestLength = length;
      }
    }
    return best;
  }

  /** @deprecated Use {@link mountFrom}. */
  mountSource(digest: string, registry: string, target: string): string | undefined {
    return this.mountFrom(digest, registry, target);
  }
}

/** @deprecated Use {@link BlobLocations}: what it indexes is where blobs live. */
export const SourceIndex = BlobLocations;
/** @deprecated Use {@link BlobLocations}. */
export type SourceIndex = BlobLocations;
/** @deprecated Use {@link BlobLocationsOptions}. */
export type SourceIndexOptions = BlobLocationsOptions;

/** Number of leading `/`-separated components two repository names share. */
function commonPrefixComponents(a: string, b: string): number {
  const left = a.split('/');
  const right = b.split('/');
  let count = 0;
  while (count < left.length && count < right.length && left[count] === right[count]) count++;
  return count;
}
