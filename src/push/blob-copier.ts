import { pipeline, Transform } from 'node:stream';
import type { UploadSession } from '../registry/index.ts';
import type { Descriptor } from '../registry/oci.ts';
import type { Provider } from '../remote/provider.ts';
import type { SourceIndex } from '../remote/sources.ts';
import { Limiter } from '../util/limiter.ts';
import { SingleFlight } from '../util/single-flight.ts';
import type { BlobStats, CopyEvent } from './events.ts';
import type { Target } from './target.ts';

/** Media types of layers that must not be pushed anywhere (foreign / non-distributable). */
const NON_DISTRIBUTABLE = /(\.foreign\.|\.nondistributable\.)/;

/** Options of {@link BlobCopier}. */
export interface BlobCopierOptions {
  /** Blob transfers at once (default 8). */
  concurrency: number;
  sources: SourceIndex;
  stats: BlobStats;
  onEvent?: (event: CopyEvent) => void;
  signal?: AbortSignal;
}

/**
 * Copies blobs into one target, each at most once per copy, through a bounded pool. Per blob:
 * exists on the target -> skip; else mount from the best known source on the target's host
 * (a 202 hands its session to the upload); else stream from the provider into the target,
 * verified on the way. The source is opened only after exists and mount have both failed.
 */
export class BlobCopier {
  readonly #target: Target;
  readonly #options: BlobCopierOptions;
  readonly #pool: Limiter;
  readonly #once = new SingleFlight<string, void>();
  readonly #done = new Set<string>();

  constructor(target: Target, options: BlobCopierOptions) {
    this.#target = target;
    this.#options = options;
    this.#pool = new Limiter(options.concurrency);
  }

  /** Copy one blob (deduplicated by digest across the whole copy). */
  async copy(descriptor: Descriptor, provider: Provider): Promise<void> {
    if (NON_DISTRIBUTABLE.test(descriptor.mediaType) && descriptor.urls?.length) return;
    if (this.#done.has(descriptor.digest)) return;
    await this.#once.do(descriptor.digest, () =>
      this.#pool.run(() => this.#transfer(descriptor, provider), this.#options.signal),
    );
    this.#done.add(descriptor.digest);
  }

  async #transfer(descriptor: Descriptor, provider: Provider): Promise<void> {
    const { stats, signal } = this.#options;
    const { digest, size } = descriptor;
    const emit = (event: CopyEvent) => this.#options.onEvent?.(event);
    if (await this.#target.hasBlob(descriptor, { signal })) {
      stats.skipped++;
      emit({ type: 'blob-skipped', digest, size });
      this.#learn(digest);
      return;
    }
    const mount = await this.#tryMount(descriptor);
    if (mount.mounted) {
      stats.mounted++;
      emit({ type: 'blob-mounted', digest, size, from: mount.from });
      this.#learn(digest);
      return;
    }
    emit({ type: 'blob-start', digest, size });
    let attemptBytes = 0;
    const open = async () => {
      // A retried attempt re-reads from the start: only count the bytes of the last attempt.
      stats.bytesDownloaded -= attemptBytes;
      stats.bytesUploaded -= attemptBytes;
      attemptBytes = 0;
      const body = await provider.fetch(descriptor, { signal });
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          attemptBytes += chunk.length;
          stats.bytesDownloaded += chunk.length;
          stats.bytesUploaded += chunk.length;
          emit({ type: 'blob-progress', digest, size, bytes: attemptBytes });
          callback(null, chunk);
        },
      });
      pipeline(body, counter, () => undefined);
      return counter;
    };
    await this.#target.writeBlob(descriptor, open, { signal, session: mount.session });
    stats.uploaded++;
    emit({ type: 'blob-done', digest, size });
    this.#learn(digest);
  }

  async #tryMount(
    descriptor: Descriptor,
  ): Promise<{ mounted: true; from: string } | { mounted: false; session?: UploadSession }> {
    const location = this.#target.location;
    if (!location || !this.#target.mountBlob) return { mounted: false };
    const from = this.#options.sources.mountSource(
      descriptor.digest,
      location.registry,
      location.repository,
    );
    if (!from) return { mounted: false };
    const result = await this.#target.mountBlob(descriptor, from, { signal: this.#options.signal });
    return result.mounted ? { mounted: true, from } : result;
  }

  /** After a successful push the target repository is a known source of the blob. */
  #learn(digest: string): void {
    const location = this.#target.location;
    if (location) this.#options.sources.add(digest, location.registry, location.repository);
  }
}
