import { parseDigest } from '../digest/index.ts';
import { type RepositoryContext, scopes } from './context.ts';
import { RegistryError } from './errors.ts';
import { getManifest } from './manifests.ts';
import { type Descriptor, OCI_INDEX } from './oci.ts';
import { paginate } from './pagination.ts';

/** Options of {@link referrers}. */
export interface ReferrersOptions {
  /** Only referrers of this artifact type (filtered here too, whether or not the registry did). */
  artifactType?: string;
  signal?: AbortSignal;
}

/**
 * The manifests that name `digest` as their subject: from the referrers API, or, where the
 * registry answers 404 (no API), from the fallback index under the tag `<alg>-<hex>`.
 */
export async function referrers(
  context: RepositoryContext,
  digest: string,
  options: ReferrersOptions = {},
): Promise<Descriptor[]> {
  parseDigest(digest);
  const wanted = (list: readonly Descriptor[]) =>
    options.artifactType === undefined
      ? [...list]
      : list.filter((d) => d.artifactType === options.artifactType);
  const query =
    options.artifactType === undefined
      ? ''
      : `?artifactType=${encodeURIComponent(options.artifactType)}`;
  try {
    const found: Descriptor[] = [];
    const pages = paginate({
      transport: context.transport,
      registry: context.registry,
      retry: context.retry,
      path: `/v2/${context.name}/referrers/${digest}${query}`,
      headers: { accept: OCI_INDEX },
      scopes: scopes(context, 'pull'),
      repository: context.name,
      items: manifestsOf,
      signal: options.signal,
    });
    for await (const descriptor of pages) found.push(descriptor);
    return wanted(found);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    const { bytes } = await getManifest(context, referrersTag(digest), {
      accept: [OCI_INDEX],
      signal: options.signal,
    });
    return wanted(manifestsOf(JSON.parse(bytes.toString('utf8'))));
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/**
 * The tag of the referrers fallback index for `digest` (distribution-spec "Backwards
 * Compatibility"): `<alg>-<hex>`, algorithm cut to 32 and hex to 64 characters, other characters `-`.
 */
export function referrersTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  const clean = (text: string) => text.replace(/[^a-zA-Z0-9._-]/g, '-');
  return `${clean(algorithm.slice(0, 32))}-${clean(hex.slice(0, 64))}`;
}

function manifestsOf(body: unknown): Descriptor[] {
  const list = (body as { manifests?: unknown } | null)?.manifests;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (d): d is Descriptor =>
      typeof d === 'object' &&
      d !== null &&
      typeof d.mediaType === 'string' &&
      typeof d.digest === 'string' &&
      typeof d.size === 'number',
  );
}

function isNotFound(err: unknown): boolean {
  return err instanceof RegistryError && err.status === 404;
}
