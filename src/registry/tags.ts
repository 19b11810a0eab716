import { type RepositoryContext, scopes } from './context.ts';
import { RegistryError } from './errors.ts';
import { paginate } from './pagination.ts';

/** Options of {@link listTags}. */
export interface ListTagsOptions {
  /** Tags per page (`n`); default: the registry's choice. */
  pageSize?: number;
  signal?: AbortSignal;
}

/** Largest page size every registry accepts: ECR answers 405 to a bigger `n`. */
const PORTABLE_PAGE_SIZE = 1000;

/**
 * Every tag of the repository, following `Link` pagination to the last page. A `pageSize` over
 * 1000 that the registry refuses with 405 before the first page (as ECR does) is retried as 1000.
 */
export async function* listTags(
  context: RepositoryContext,
  options: ListTagsOptions = {},
): AsyncGenerator<string> {
  const { pageSize } = options;
  let started = false;
  try {
    for await (const tag of tagPages(context, pageSize, options.signal)) {
      started = true;
      yield tag;
    }
  } catch (err) {
    const refusedSize =
      !started &&
      pageSize !== undefined &&
      pageSize > PORTABLE_PAGE_SIZE &&
      err instanceof RegistryError &&
      err.status === 405;
    if (!refusedSize) throw err;
    yield* tagPages(context, PORTABLE_PAGE_SIZE, options.signal);
  }
}

function tagPages(
  context: RepositoryContext,
  pageSize: number | undefined,
  signal: AbortSignal | undefined,
): AsyncGenerator<string> {
  const query = pageSize === undefined ? '' : `?n=${pageSize}`;
  return paginate({
    transport: context.transport,
    registry: context.registry,
    retry: context.retry,
    path: `/v2/${context.name}/tags/list${query}`,
    scopes: scopes(context, 'pull'),
    repository: context.name,
    notFoundCode: 'NAME_UNKNOWN',
    items: (body) => strings((body as { tags?: unknown } | null)?.tags),
    signal,
  });
}

/** The strings of a JSON array (`null`, as registries send for no tags, is empty). */
export function strings(value: unknown): string[] {
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === 'string')
    : [];
}
