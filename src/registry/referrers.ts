import { parseDigest } from '../digest/index.ts';
import { checkIndex, type Descriptor, decodeManifest, OCI_INDEX } from '../oci/index.ts';
import { type RepositoryContext, scopes } from './context.ts';
import { RegistryError } from './errors.ts';
import { getManifest } from './manifests.ts';
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
  const where = `referrers of ${digest} in ${context.registry}/${context.name}`;
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
      items: (body) => checkIndex(body, where).manifests,
      signal: options.signal,
    });
    for await (const descriptor of pages) found.push(descriptor);
    return wanted(found);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    const tag = referrersTag(digest);
    const { bytes } = await getManifest(context, tag, {
      accept: [OCI_INDEX],
      signal: options.signal,
    });
    const decoded = decodeManifest(bytes, OCI_INDEX, `${where}, fallback tag ${tag}`);
    return decoded.kind === 'index' ? wanted(decoded.index.manifests) : [];
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

function isNotFound(err: unknown): boolean {
  return err instanceof RegistryError && err.status === 404;
}
