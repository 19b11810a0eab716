/**
 * Where blobs are known to live: digest -> registry host -> repositories. This is the idea of
 * BuildKit's `containerd.io/distribution.source.<host>` label, kept in memory and never pushed.
 * The copy engine asks it for a mount source on the target's host and records every repository
 * it pushed to, so a later copy on that host mounts instead of uploading.
 */
export class SourceIndex {
  readonly #byDigest = new Map<string, Map<string, Set<string>>>();

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
  }

  /** Copy every entry of `other` into this index. */
  merge(other: SourceIndex): void {
    for (const [digest, hosts] of other.#byDigest) {
      for (const [registry, repositories] of hosts) {
        for (const repository of repositories) this.add(digest, registry, repository);
      }
    }
  }

  /** Repositories on `registry` known to hold `digest`, in the order they were learnt. */
  repositories(digest: string, registry: string): string[] {
    return [...(this.#byDigest.get(digest)?.get(registry) ?? [])];
  }

  /** `host -> repositories` for one digest (a copy). */
  sourcesOf(digest: string): Map<string, string[]> {
    const hosts = this.#byDigest.get(digest) ?? new Map<string, Set<string>>();
    return new Map([...hosts].map(([host, repos]) => [host, [...repos]]));
  }

  /**
   * The best repository to mount `digest` from into `target` on `registry`: the candidate
   * sharing the longest common path prefix with the target (ties go to the one learnt last, as
   * containerd does); never the target itself. Undefined when none is known on that host.
   */
  mountSource(digest: string, registry: string, target: string): string | undefined {
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
}

/** Number of leading `/`-separated components two repository names share. */
function commonPrefixComponents(a: string, b: string): number {
  const left = a.split('/');
  const right = b.split('/');
  let count = 0;
  while (count < left.length && count < right.length && left[count] === right[count]) count++;
  return count;
}
