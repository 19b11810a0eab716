import { digestBytes } from '../digest/index.ts';
import { OciferryError } from '../errors.ts';
import {
  type Descriptor,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  formatPlatform,
  OCI_INDEX,
  type Platform,
} from '../oci/index.ts';
import { formatReference, parseReference, type Reference } from '../reference/index.ts';
import { contextOf } from '../remote/ociferry-context.ts';
import type { RemoteImage } from '../remote/remote-image.ts';
import type { Remote } from '../remote/remote-index.ts';
import { settleAll } from '../util/settle.ts';
import { convertedManifest } from './convert.ts';
import { type CopyOptions, DestinationDigestError, finish, openSession, result } from './copy.ts';
import type { CopyResult } from './events.ts';

/** Options of {@link buildIndex}. */
export interface BuildIndexOptions extends CopyOptions {
  /** Annotations of the new index (needs an OCI index). */
  annotations?: Readonly<Record<string, string>>;
  /** Allow two entries for the same platform (default: an error). */
  allowDuplicatePlatforms?: boolean;
}

/** The images given to an index build are not a valid set. */
export class IndexBuildError extends OciferryError {
  constructor(message: string) {
    super('INDEX_INVALID', message);
  }
}

/**
 * Push a manifest list assembled from remote images: each of `remotes` may be an image or an
 * index (its images are flattened in). Child manifests go up by digest into the destination repository
 * with their blobs mounted or streamed; the platform comes from the source descriptor or, when
 * absent, the image config. The list is a Docker manifest list when every child is a Docker
 * manifest (unless `ociMediatypes`), an OCI index otherwise.
 */
export async function buildIndex(
  destination: string | Reference,
  remotes: readonly Remote[],
  options: BuildIndexOptions = {},
): Promise<CopyResult> {
  if (remotes.length === 0) throw new IndexBuildError('an index needs at least one source image');
  const reference = typeof destination === 'string' ? parseReference(destination) : destination;
  const client = options.client ?? contextOf(options).client;
  const requestsBefore = client.requestCount;
  const images = await collectImages(remotes, options.signal);
  const mediaType = listType(images, options.ociMediatypes);
  if (options.annotations && mediaType === DOCKER_MANIFEST_LIST) {
    throw new IndexBuildError(
      'a Docker manifest list has no annotations: add --oci-mediatypes to build an OCI index',
    );
  }
  const platforms = await Promise.all(images.map((image) => image.platform(options)));
  if (!options.allowDuplicatePlatforms) checkDuplicates(images, platforms);

  const children = await Promise.all(
    images.map((image) => convertedManifest(image, options.ociMediatypes ?? false, options.signal)),
  );
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((child, i) => entry(child.descriptor, platforms[i] as Platform)),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const root = {
    descriptor: { mediaType, digest: digestBytes(bytes), size: bytes.length },
    bytes,
  };
  if (reference.digest !== undefined && reference.digest !== root.descriptor.digest) {
    const where = formatReference(reference);
    throw new DestinationDigestError(where, reference.digest, root.descriptor.digest, 'built');
  }

  const session = await openSession(reference, client, remotes[0], options);
  await settleAll(images.map((image) => session.push(image)));
  const tags = await finish(session, root, reference, options);
  return result(session, root, tags, client.requestCount - requestsBefore);
}

/**
 * The media type {@link buildIndex} gives an index of `remotes`: a Docker manifest list when
 * every image is a Docker manifest (and `ociMediatypes` does not convert them), an OCI index
 * otherwise. Reads the manifests of indexes among the remotes, nothing else.
 */
export async function indexMediaType(
  remotes: readonly Remote[],
  options: { ociMediatypes?: boolean; signal?: AbortSignal } = {},
): Promise<string> {
  return listType(await collectImages(remotes, options.signal), options.ociMediatypes);
}

function listType(images: readonly RemoteImage[], ociMediatypes = false): string {
  const docker = !ociMediatypes && images.every((image) => image.mediaType === DOCKER_MANIFEST);
  return docker ? DOCKER_MANIFEST_LIST : OCI_INDEX;
}

/** Images of the remotes in order, indexes flattened, each manifest once. */
async function collectImages(
  remotes: readonly Remote[],
  signal?: AbortSignal,
): Promise<RemoteImage[]> {
  const images: RemoteImage[] = [];
  const seen = new Set<string>();
  for (const remote of remotes) {
    const found = remote.kind === 'image' ? [remote] : await remote.images({ signal });
    for (const image of found) {
      if (seen.has(image.digest)) continue;
      seen.add(image.digest);
      images.push(image);
    }
  }
  return images;
}

function checkDuplicates(images: readonly RemoteImage[], platforms: readonly Platform[]): void {
  const owners = new Map<string, string>();
  platforms.forEach((platform, i) => {
    const key = `${formatPlatform(platform)} ${platform['os.version'] ?? ''}`.trim();
    const owner = owners.get(key);
    const ref = images[i]?.ref ?? '';
    if (owner !== undefined) {
      throw new IndexBuildError(
        `${key} comes from both ${owner} and ${ref}; pass --allow-duplicate-platforms to keep both`,
      );
    }
    owners.set(key, ref);
  });
}

function entry(descriptor: Descriptor, platform: Platform): Descriptor {
  return {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    platform,
  };
}
