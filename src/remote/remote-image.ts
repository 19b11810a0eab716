import type { Readable } from 'node:stream';
import { ensureVerified } from '../digest/index.ts';
import type { Descriptor, ImageManifest, Platform } from '../oci/index.ts';
import { checkImageConfig, configPlatform, type ImageConfig } from '../oci/index.ts';
import { SingleFlight } from '../util/single-flight.ts';
import type { RemoteContext } from './context.ts';
import { LazyBlob } from './lazy-blob.ts';
import { readJson } from './read-json.ts';
import { RemoteManifest } from './remote-manifest.ts';

/**
 * An image manifest resolved from somewhere, with nothing else fetched: the config is read on
 * first use, the layers only when a consumer downloads them.
 */
export class RemoteImage extends RemoteManifest {
  readonly kind = 'image' as const;
  readonly manifest: ImageManifest;
  readonly configBlob: LazyBlob;
  readonly layers: readonly LazyBlob[];
  #config: ImageConfig | undefined;
  readonly #configRead = new SingleFlight<'config', ImageConfig>();

  constructor(
    descriptor: Descriptor,
    manifest: ImageManifest,
    bytes: Buffer,
    context: RemoteContext,
  ) {
    super(descriptor, bytes, context);
    this.manifest = manifest;
    const lazy = (desc: Descriptor) =>
      new LazyBlob(desc, context.provider, context.ref, context.blobLocations, context.library);
    this.configBlob = lazy(manifest.config);
    this.layers = manifest.layers.map(lazy);
  }

  /** Config and layers: every blob the manifest references. */
  blobs(): LazyBlob[] {
    return [this.configBlob, ...this.layers];
  }

  /**
   * The image config, fetched (and verified) once and kept; concurrent callers share one read,
   * which stops only when all of them have aborted.
   */
  async config(options: { signal?: AbortSignal } = {}): Promise<ImageConfig> {
    if (this.#config) return this.#config;
    return this.#configRead.do(
      'config',
      async (signal) => {
        const where = `config ${this.manifest.config.digest} of ${this.ref}`;
        const json = await readJson(
          () => this.configBlob.fetch({ signal }),
          this.manifest.config.size,
          this.context.configSizeLimit,
          where,
        );
        this.#config = checkImageConfig(json, where);
        return this.#config;
      },
      options.signal,
    );
  }

  /** The platform from the index descriptor when known, else from the config (one fetch). */
  async platform(options: { signal?: AbortSignal } = {}): Promise<Platform> {
    return this.descriptor.platform ?? configPlatform(await this.config(options));
  }

  /** Layer diffIDs from the config, bottom-up. */
  async diffIds(options: { signal?: AbortSignal } = {}): Promise<readonly string[]> {
    return (await this.config(options)).rootfs.diff_ids;
  }

  /** A verified stream of one of this image's layers (whatever its provider verifies). */
  async openLayer(layer: Descriptor, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const { provider } = this.context;
    const stream = await provider.fetch(layer, options);
    return ensureVerified(stream, layer.digest, { size: layer.size, source: provider.description });
  }
}
