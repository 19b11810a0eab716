import { OciferryError } from '../errors.ts';
import type { Descriptor, ImageIndex, Platform } from '../oci/index.ts';
import {
  bestPlatformMatch,
  DOCKER_CONFIG,
  decodeManifest,
  formatPlatform,
  ImageConfigInvalidError,
  isIndexMediaType,
  isManifestMediaType,
  OCI_CONFIG,
  parsePlatform,
  platformRank,
} from '../oci/index.ts';
import { SingleFlight } from '../util/single-flight.ts';
import type { RemoteContext } from './context.ts';
import { RemoteImage } from './remote-image.ts';
import { RemoteManifest } from './remote-manifest.ts';

/** A resolved image or index. */
export type Remote = RemoteImage | RemoteIndex;

/**
 * No manifest in an index matches the wanted platform, or a single image is for another
 * platform than the wanted one.
 */
export class PlatformNotFoundError extends OciferryError {
  /**
   * @param available the platforms the index lists, or the one platform of a single image
   * @param single true when `ref` is a single image rather than an index
   */
  constructor(ref: string, wanted: Platform, available: readonly string[], single = false) {
    super(
      'PLATFORM_NOT_FOUND',
      single
        ? `${ref} is a single-platform image for ${available.join(', ')}, not ${formatPlatform(wanted)}`
        : `${ref} has no image for ${formatPlatform(wanted)} (available: ${available.join(', ') || 'none'})`,
    );
  }
}

/** Config media types whose config states the image's platform. */
const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set([OCI_CONFIG, DOCKER_CONFIG]);

/**
 * Check that a single image (resolved by its own reference, not picked out of an index) can run
 * on `wanted` (containerd's matching rules), reading its platform from its config (one blob
 * fetch). An image whose platform is not stated (an artifact, a config without `os` and
 * `architecture`) passes: nothing says it is for another platform.
 * @throws PlatformNotFoundError naming the image's platform when it is another one
 */
export async function requirePlatform(
  image: RemoteImage,
  wanted: Platform | string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const platform = typeof wanted === 'string' ? parsePlatform(wanted) : wanted;
  let found = image.descriptor.platform;
  if (found === undefined) {
    if (!IMAGE_CONFIG_TYPES.has(image.manifest.config.mediaType)) return;
    try {
      found = await image.platform(options);
    } catch (error) {
      if (error instanceof ImageConfigInvalidError) return;
      throw error;
    }
  }
  if (platformRank(platform, found) !== undefined) return;
  throw new PlatformNotFoundError(image.ref, platform, [formatPlatform(found)], true);
}

/**
 * An image index (or Docker manifest list) resolved with nothing but its own manifest fetched.
 * Children are resolved one by one on demand.
 */
export class RemoteIndex extends RemoteManifest {
  readonly kind = 'index' as const;
  readonly index: ImageIndex;
  /** Children resolved so far, by digest. */
  readonly #children = new Map<string, Remote>();
  readonly #childReads = new SingleFlight<string, Remote>();

  constructor(descriptor: Descriptor, index: ImageIndex, bytes: Buffer, context: RemoteContext) {
    super(descriptor, bytes, context);
    this.index = index;
  }

  /** Child descriptors as listed. */
  get manifests(): readonly Descriptor[] {
    return this.index.manifests;
  }

  /**
   * Resolve one child manifest (fetched once, then kept; concurrent callers share one read, which
   * stops only when all of them have aborted). Children of unknown media types (artifacts, cache
   * configs) are not manifests and are refused.
   */
  async child(descriptor: Descriptor, options: { signal?: AbortSignal } = {}): Promise<Remote> {
    const known = this.#children.get(descriptor.digest);
    if (known) return known;
    return this.#childReads.do(
      descriptor.digest,
      async (signal) => {
        const child = await loadRemote(descriptor, this.context, signal);
        this.#children.set(descriptor.digest, child);
        return child;
      },
      options.signal,
    );
  }

  /**
   * The image for `platform` (a {@link Platform} or `os/arch[/variant]`, containerd's matching
   * rules), fetching only that manifest.
   * @throws InvalidPlatformError for a platform string that cannot be parsed
   * @throws PlatformNotFoundError when no image of the index can run on `platform`
   */
  async select(
    wanted: Platform | string,
    options: { signal?: AbortSignal } = {},
  ): Promise<RemoteImage> {
    const platform = typeof wanted === 'string' ? parsePlatform(wanted) : wanted;
    const images = this.manifests.filter((m) => isManifestMediaType(m.mediaType));
    const match = bestPlatformMatch(platform, images, (m) => m.platform);
    if (!match) {
      const available = images.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
      throw new PlatformNotFoundError(this.ref, platform, available);
    }
    return (await this.child(match, options)) as RemoteImage;
  }

  /**
   * Every image below this index, nested indexes flattened, each manifest fetched once even
   * when listed several times (visited set).
   */
  async images(options: { signal?: AbortSignal } = {}): Promise<RemoteImage[]> {
    const images: RemoteImage[] = [];
    const visited = new Set<string>();
    const walk = async (index: RemoteIndex): Promise<void> => {
      for (const descriptor of index.manifests) {
        if (visited.has(descriptor.digest)) continue;
        visited.add(descriptor.digest);
        if (!isManifestMediaType(descriptor.mediaType) && !isIndexMediaType(descriptor.mediaType))
          continue;
        const child = await index.child(descriptor, options);
        if (child.kind === 'image') images.push(child);
        else await walk(child);
      }
    };
    await walk(this);
    return images;
  }
}

/** Fetch a manifest by descriptor and wrap it as the right kind of remote. */
export async function loadRemote(
  descriptor: Descriptor,
  context: RemoteContext,
  signal?: AbortSignal,
): Promise<Remote> {
  const bytes = await context.manifests.fetchManifest(descriptor, { signal });
  return remoteFromBytes(descriptor, bytes, context);
}

/** Wrap verified manifest bytes as a remote, recording where its blobs live. */
export function remoteFromBytes(
  descriptor: Descriptor,
  bytes: Buffer,
  context: RemoteContext,
): Remote {
  const where = `${context.ref} (${descriptor.digest})`;
  const decoded = decodeManifest(bytes, descriptor.mediaType, where);
  const location = context.provider.location;
  const remember = (digest: string) =>
    location && context.blobLocations.add(digest, location.registry, location.repository);
  remember(descriptor.digest);
  if (decoded.kind === 'index') {
    for (const child of decoded.index.manifests) remember(child.digest);
    return new RemoteIndex(descriptor, decoded.index, bytes, context);
  }
  remember(decoded.manifest.config.digest);
  for (const layer of decoded.manifest.layers) remember(layer.digest);
  return new RemoteImage(descriptor, decoded.manifest, bytes, context);
}
