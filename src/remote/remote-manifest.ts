import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RemoteContext } from './context.ts';
import type { UnlazyOptions } from './lazy-blob.ts';
import type { Remote } from './remote-index.ts';

/** Options of {@link RemoteManifest.unlazy}. */
export interface UnlazyImageOptions extends UnlazyOptions {
  /** Tag to give the manifest in the layout's index.json; untagged entry when omitted. */
  tag?: string;
  /** Blob transfers at once (default 8, as a copy's). */
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

  /**
   * Download everything the manifest references and the manifest blob, without listing the
   * manifest in `index.json` (a referrer among them is listed, as a copy lists it).
   * @deprecated `unlazy` lists the manifest untagged without a tag, which keeps it from GC.
   */
  async unlazyContent(store: LayoutStore, options: UnlazyImageOptions = {}): Promise<void> {
    const engine = await copyEngine();
    await engine.unlazyContent(this as unknown as Remote, store, options);
  }

  /**
   * Download into `store` and list the manifest in `index.json` under `options.tag` (untagged
   * without): a copy into the layout through the copy engine, with a copy's defaults. Blobs
   * already there cost no network I/O, each blob is read once however many images share it, and
   * concurrent unlazy calls into one store share each blob's download. For the copy's events and
   * figures, `copy(remote, store)` does the same and returns them.
   */
  async unlazy(store: LayoutStore, options: UnlazyImageOptions = {}): Promise<void> {
    const engine = await copyEngine();
    await engine.unlazy(this as unknown as Remote, store, options);
  }
}

/**
 * The copy engine, which sits in the layer above this one (it copies remotes): loaded on first
 * use, so that this layer does not import it.
 */
function copyEngine(): Promise<typeof import('../copy/unlazy.ts')> {
  return import('../copy/unlazy.ts');
}
