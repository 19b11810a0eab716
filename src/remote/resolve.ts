import type { Descriptor, Platform } from '../oci/index.ts';
import { formatReference, parseReference, type Reference } from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import type { BlobLocations } from './blob-locations.ts';
import { remoteContext } from './context.ts';
import type { ContextOptions } from './ociferry-context.ts';
import { openStore } from './open-store.ts';
import { type Remote, remoteFromBytes, requirePlatform } from './remote-index.ts';

export { NotFoundInLayoutError } from '../layout/index.ts';

/** Options of {@link resolve}. */
export interface ResolveOptions extends ContextOptions {
  /** Registry client to use; default the context's. */
  client?: RegistryClient;
  /**
   * Select one platform out of an index: the result is then that platform's image. A single
   * image must be for this platform (`PLATFORM_NOT_FOUND` otherwise).
   */
  platform?: Platform | string;
  signal?: AbortSignal;
  /** Where learnt blob locations go; default the context's. */
  blobLocations?: BlobLocations;
  /** @deprecated Use {@link blobLocations}. */
  sources?: BlobLocations;
  /** Cap on image config size, default 32 MiB. */
  configSizeLimit?: number;
}

/**
 * Resolve a reference to a lazy remote, fetching the manifest and nothing else. With `platform`,
 * an index resolves to that platform's image (one more manifest request), and a single image is
 * checked to be for that platform (its config fetched, see {@link requirePlatform}). A layout
 * reference without a tag names the layout's only image, else its `latest`.
 */
export async function resolve(
  ref: string | Reference,
  options: ResolveOptions = {},
): Promise<Remote> {
  const reference = typeof ref === 'string' ? parseReference(ref) : ref;
  const store = await openStore(reference, options);
  const { descriptor, bytes } = await store.fetchReference(reference.digest ?? reference.tag, {
    signal: options.signal,
  });
  const context = remoteContext(store, formatReference(reference), options);
  const remote = remoteFromBytes(descriptor, bytes, context);
  if (options.platform === undefined) return remote;
  if (remote.kind === 'index') return remote.select(options.platform, options);
  await requirePlatform(remote, options.platform, options);
  return remote;
}

/**
 * The descriptor a reference points at, without its body when the store can tell (a registry
 * answering HEAD with a digest, a layout's `index.json`); else from the manifest itself.
 */
export async function resolveDescriptor(
  ref: string | Reference,
  options: Omit<ResolveOptions, 'platform'> = {},
): Promise<Descriptor> {
  const reference = typeof ref === 'string' ? parseReference(ref) : ref;
  const store = await openStore(reference, options);
  return store.resolve(reference.digest ?? reference.tag, { signal: options.signal });
}
