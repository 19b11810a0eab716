import { parseDigest } from '../digest/index.ts';
import { repositoryScope } from './auth/scope.ts';
import { discardBody } from './body.ts';
import type { RepositoryContext } from './context.ts';
import { withRetry } from './retry.ts';
import { sessionFrom, type UploadSession } from './uploads.ts';

/** Outcome of {@link mountBlob}: mounted, or not (with the session a 202 opened, to upload into). */
export type MountResult = { mounted: true } | { mounted: false; session?: UploadSession };

/**
 * Ask the registry to mount blob `digest` from repository `from` (same registry) into this one.
 * One token covers `<dst>:pull,push` and `<from>:pull`. 201 is a mount; 202 opens an upload
 * session instead; 401/403/404 (source unreadable or unknown) mean "upload it".
 */
export async function mountBlob(
  context: RepositoryContext,
  digest: string,
  from: string,
  options: { signal?: AbortSignal } = {},
): Promise<MountResult> {
  parseDigest(digest);
  const response = await withRetry(
    context.retry,
    () =>
      context.transport.request(context.registry, {
        method: 'POST',
        path: `/v2/${context.name}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
        scopes: [repositoryScope(context.name, ['pull', 'push']), repositoryScope(from, ['pull'])],
        repository: context.name,
        expect: [201, 202, 401, 403, 404],
        signal: options.signal,
      }),
    options.signal,
  );
  await discardBody(response);
  if (response.status === 201) return { mounted: true };
  if (response.status === 202) return { mounted: false, session: sessionFrom(response) };
  return { mounted: false };
}
