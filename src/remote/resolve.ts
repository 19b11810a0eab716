import { OciferryError } from '../errors.ts';
import { LayoutStore } from '../layout/index.ts';
import type { Platform } from '../oci/index.ts';
import { type Descriptor, MANIFEST_MEDIA_TYPES } from '../oci/index.ts';
import { formatReference, parseReference, type Reference } from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import type { RemoteContext } from './context.ts';
import { LayoutProvider } from './layout-provider.ts';
import {
  layoutManifestLoader,
  MANIFEST_SIZE_LIMIT,
  registryManifestLoader,
} from './manifest-loader.ts';
import { type ContextOptions, contextOf } from './ociferry-context.ts';
import { RegistryProvider } from './registry-provider.ts';
import { type Remote, remoteFromBytes, requirePlatform } from './remote-index.ts';
import type { SourceIndex } from './sources.ts';

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
  sources?: SourceIndex;
  /** Cap on image config size, default 32 MiB. */
  configSizeLimit?: number;
}

/** A layout reference named a tag or digest the layout does not have. */
export class NotFoundInLayoutError extends OciferryError {
  constructor(ref: string) {
    super('MANIFEST_UNKNOWN', `${ref}: not found in the layout's index.json`);
  }
}

/**
 * Resolve a reference to a lazy remote, fetching the manifest and nothing else. With `platform`,
 * an index resolves to that platform's image (one more manifest request), and a single image is
 * checked to be for that platform (its config fetched, see {@link requirePlatform}).
 */
export async function resolve(
  ref: string | Reference,
  options: ResolveOptions = {},
): Promise<Remote> {
  const reference = typeof ref === 'string' ? parseReference(ref) : ref;
  const { descriptor, bytes, context } =
    reference.kind === 'registry'
      ? await fetchFromRegistry(reference, options)
      : await fetchFromLayout(reference, options);
  const remote = remoteFromBytes(descriptor, bytes, context);
  if (options.platform === undefined) return remote;
  if (remote.kind === 'index') return remote.select(options.platform, options);
  await requirePlatform(remote, options.platform, options);
  return remote;
}

/**
 * The descriptor a reference points at, without its body when the registry answers HEAD with a
 * digest (one HEAD request); falls back to GET when the digest header is missing.
 */
export async function resolveDescriptor(
  ref: string | Reference,
  options: Omit<ResolveOptions, 'platform'> = {},
): Promise<Descriptor> {
  const reference = typeof ref === 'string' ? parseReference(ref) : ref;
  if (reference.kind === 'registry') {
    const client = options.client ?? contextOf(options).client;
    const repository = client.repository(reference.registry, reference.repository);
    const target = reference.digest ?? reference.tag ?? 'latest';
    const head = await repository.headManifest(target, { signal: options.signal });
    if (head) return head;
  }
  return (await resolve(reference, options)).descriptor;
}

interface Fetched {
  descriptor: Descriptor;
  bytes: Buffer;
  context: RemoteContext;
}

async function fetchFromRegistry(
  reference: Extract<Reference, { kind: 'registry' }>,
  options: ResolveOptions,
): Promise<Fetched> {
  const client = options.client ?? contextOf(options).client;
  const repository = client.repository(reference.registry, reference.repository);
  const target = reference.digest ?? reference.tag ?? 'latest';
  const { descriptor, bytes } = await repository.getManifest(target, {
    accept: [...MANIFEST_MEDIA_TYPES],
    signal: options.signal,
  });
  return {
    descriptor,
    bytes,
    context: {
      ref: formatReference(reference),
      provider: new RegistryProvider(repository),
      manifests: registryManifestLoader(repository),
      sources: options.sources ?? contextOf(options).sources,
      configSizeLimit: options.configSizeLimit ?? 32 * 1024 * 1024,
      library: contextOf(options),
    },
  };
}

async function fetchFromLayout(
  reference: Extract<Reference, { kind: 'layout' }>,
  options: ResolveOptions,
): Promise<Fetched> {
  const store = await LayoutStore.open(reference.path, { create: false });
  const ref = formatReference(reference);
  const descriptor = await findInLayout(store, reference.tag, reference.digest);
  if (!descriptor) throw new NotFoundInLayoutError(ref);
  const manifests = layoutManifestLoader(store, MANIFEST_SIZE_LIMIT);
  const bytes = await manifests.load(descriptor, { signal: options.signal });
  return {
    descriptor,
    bytes,
    context: {
      ref,
      provider: new LayoutProvider(store),
      manifests,
      sources: options.sources ?? contextOf(options).sources,
      configSizeLimit: options.configSizeLimit ?? 32 * 1024 * 1024,
      library: contextOf(options),
    },
  };
}

/** Find the index.json entry for a tag or digest; with neither, the only image (or `latest`). */
async function findInLayout(
  store: LayoutStore,
  tag: string | undefined,
  digest: string | undefined,
): Promise<Descriptor | undefined> {
  if (digest) {
    const index = await store.index();
    return index.manifests.find((m) => m.digest === digest);
  }
  if (tag) return store.resolveTag(tag);
  // Referrers recorded beside an image (signatures, SBOMs) do not make the choice ambiguous.
  const images = await store.images();
  if (images.length === 1) return images[0];
  return store.resolveTag('latest');
}
