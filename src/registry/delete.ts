import { parseDigest } from '../digest/index.ts';
import { discardBody } from './body.ts';
import { type RepositoryContext, scopes } from './context.ts';
import { withRetry } from './retry.ts';

/**
 * DELETE a manifest or a blob by digest. Registries may refuse with 400/405 when deletion is
 * disabled; an unknown digest is MANIFEST_UNKNOWN / BLOB_UNKNOWN.
 */
export async function deleteByDigest(
  context: RepositoryContext,
  kind: 'manifests' | 'blobs',
  digest: string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  parseDigest(digest);
  await withRetry(
    context.retry,
    async () => {
      const response = await context.transport.request(context.registry, {
        method: 'DELETE',
        path: `/v2/${context.name}/${kind}/${digest}`,
        scopes: scopes(context, 'delete'),
        repository: context.name,
        expect: [200, 202, 204],
        notFoundCode: kind === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN',
        signal: options.signal,
      });
      await discardBody(response);
    },
    options.signal,
  );
}
