import { type Descriptor, isIndexMediaType, isManifestMediaType } from '../oci/index.ts';
import { type Remote, remoteFromBytes } from '../remote/remote-index.ts';
import type { Store } from '../remote/store.ts';
import { mapLimit } from '../util/limiter.ts';
import { settleAll } from '../util/settle.ts';
import { SingleFlight } from '../util/single-flight.ts';
import type { BlobLane } from './blob-copier.ts';
import { convertedManifest } from './convert.ts';
import type { BlobStats, CopyEvent } from './events.ts';

/** A manifest as it went (or will go) to the target. */
export interface PushedManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
}

/** Options shared by every push of one session. */
export interface CopySessionOptions {
  ociMediatypes: boolean;
  referrers: boolean;
  signal?: AbortSignal;
  onEvent?: (event: CopyEvent) => void;
}

/**
 * One copy or index build into one target: blobs go up once each through its lane of a blob
 * copier (shared with the other destinations of the copy), manifests after their children, each
 * manifest once. The caller tags the root last.
 */
export class CopySession {
  readonly target: Store;
  readonly stats: BlobStats;
  /** Source digest -> pushed digest of manifests rewritten by a media type conversion. */
  readonly converted = new Map<string, string>();
  readonly #options: CopySessionOptions;
  readonly #blobs: BlobLane;
  readonly #manifests = new SingleFlight<string, PushedManifest>();
  readonly #stored = new Set<string>();
  readonly #referrersListed = new Set<string>();

  constructor(target: Store, blobs: BlobLane, options: CopySessionOptions) {
    this.target = target;
    this.stats = blobs.stats;
    this.#options = options;
    this.#blobs = blobs;
  }

  /**
   * Push everything `remote` references, then (unless `deferManifest`) its manifest by digest.
   * Returns the manifest as pushed: converted bytes when a conversion applied. With
   * `skipIfPresent`, one HEAD first: a target that checks references and holds the manifest
   * holds its whole tree, whose blobs are then counted as skipped without a request each (not
   * with a conversion or referrers to copy, which can differ from what is there).
   */
  async push(
    remote: Remote,
    options: { deferManifest?: boolean; skipIfPresent?: boolean } = {},
  ): Promise<PushedManifest> {
    const pushed =
      options.skipIfPresent && (await this.#holdsTree(remote))
        ? await this.#countPresent(remote)
        : await this.#pushContent(remote);
    if (!options.deferManifest) await this.storeManifest(pushed);
    if (this.#options.referrers) await this.#pushReferrers(remote);
    return pushed;
  }

  /** Store manifest bytes under their digest, once per session. */
  async storeManifest(manifest: PushedManifest): Promise<void> {
    const { digest } = manifest.descriptor;
    if (this.#stored.has(digest)) return;
    await this.#manifests.do(digest, async () => {
      await this.target.pushManifest(manifest.descriptor, manifest.bytes, {
        signal: this.#options.signal,
      });
      this.#options.onEvent?.({
        type: 'manifest-pushed',
        descriptor: manifest.descriptor,
        target: this.target.description,
      });
      return manifest;
    });
    this.#stored.add(digest);
  }

  async #holdsTree(remote: Remote): Promise<boolean> {
    const { ociMediatypes, referrers, signal } = this.#options;
    if (!this.target.checksReferences || ociMediatypes || referrers) return false;
    return this.target.exists(remote.descriptor, { signal });
  }

  /** Count every blob of a tree the target holds as skipped (child manifests read from the source). */
  async #countPresent(remote: Remote): Promise<PushedManifest> {
    this.#stored.add(remote.digest);
    if (remote.kind === 'image') {
      for (const blob of remote.blobs()) this.#blobs.present(blob.descriptor);
    } else {
      await mapLimit(
        remote.manifests,
        4,
        async (entry, _index, signal) => {
          if (isManifestMediaType(entry.mediaType) || isIndexMediaType(entry.mediaType)) {
            if (!this.#stored.has(entry.digest)) {
              await this.#countPresent(await remote.child(entry, { signal }));
            }
          } else {
            this.#blobs.present(entry);
          }
        },
        this.#options.signal,
      );
    }
    return { descriptor: remote.descriptor, bytes: remote.bytes };
  }

  async #pushContent(remote: Remote): Promise<PushedManifest> {
    const { provider } = remote.context;
    const { ociMediatypes, signal } = this.#options;
    if (remote.kind === 'image') {
      await settleAll(remote.blobs().map((blob) => this.#blobs.copy(blob.descriptor, provider)));
    } else {
      await mapLimit(
        remote.manifests,
        4,
        async (entry, _index, inner) => {
          if (!isManifestMediaType(entry.mediaType) && !isIndexMediaType(entry.mediaType)) {
            await this.#blobs.copy(entry, provider);
            return;
          }
          await this.push(await remote.child(entry, { signal: inner }));
        },
        signal,
      );
    }
    const pushed = await convertedManifest(remote, ociMediatypes, signal);
    if (pushed.descriptor.digest !== remote.digest) {
      this.converted.set(remote.digest, pushed.descriptor.digest);
    }
    return pushed;
  }

  /** Copy the manifests whose subject is `remote` (signatures, SBOMs), recursively. */
  async #pushReferrers(remote: Remote): Promise<void> {
    const { provider, manifests } = remote.context;
    if (!provider.referrers || this.#referrersListed.has(remote.digest)) return;
    this.#referrersListed.add(remote.digest);
    const signal = this.#options.signal;
    for (const descriptor of await provider.referrers(remote.digest, { signal })) {
      const bytes = await manifests.fetchManifest(descriptor, { signal });
      await this.push(remoteFromBytes(descriptor, bytes, remote.context));
    }
  }
}
