import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RemoteContext } from './context.ts';
import type { UnlazyOptions } from './lazy-blob.ts';

/** Options of {@link RemoteManifest.unlazy}. */
export interface UnlazyImageOptions extends UnlazyOptions {
  /** Tag to give the manifest in the layout's index.json; untagged entry when omitted. */
  tag?: string;
  /** Blobs downloaded at once (default 4). */
  concurrency?: number;
}

/** What images and indexes have in common: a manifest fetched exactly as stored, and its origin. */
export abstract class RemoteManifest {
  /** The manifest's descriptor (with `platform` when it came from an index). */
  readonly descriptor: Descriptor;
  /** The manifest exactly as fetched: pushing these bytes keeps the digest. */
  readonly bytes: Buffer;
  readonly context: RemoteContext;

  constructor(descriptor: Descriptor, bytes: Buffer, context: RemoteContext) {
    this.descriptor = descriptor;
    this.bytes = bytes;
    this.context = context;
  }

  /** The reference this manifest was resolved from. */
  get ref(): string {
    return this.context.ref;
  }

  get digest(): string {
    return this.descriptor.digest;
  }

  get mediaType(): string {
    return this.descriptor.mediaType;
  }

  /** Download everything the manifest references and the manifest blob, without touching index.json. */
  abstract unlazyContent(store: LayoutStore, options?: UnlazyImageOptions): Promise<void>;

  /**
   * Download into `store` (bounded parallelism, nothing fetched twice, content already there costs
   * no network I/O), then list the manifest in index.json under `options.tag` (untagged without).
   */
  async unlazy(store: LayoutStore, options: UnlazyImageOptions = {}): Promise<void> {
    await this.unlazyContent(store, options);
    const { mediaType, digest, size } = this.descriptor;
    const entry: Descriptor = { mediaType, digest, size };
    if (options.tag === undefined) await store.addManifest(entry, { signal: options.signal });
    else await store.putTag(options.tag, entry, { signal: options.signal });
  }
}
