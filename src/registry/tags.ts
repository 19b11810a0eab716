import { type RepositoryContext, scopes } from './context.ts';
import { paginate } from './pagination.ts';

/** Options of {@link listTags}. */
export interface ListTagsOptions {
  /** Tags per page (`n`); default: the registry's choice. */
  pageSize?: number;
  signal?: AbortSignal;
}

/** Every tag of the repository, following `Link` pagination to the last page. */
export function listTags(
  context: RepositoryContext,
  options: ListTagsOptions = {},
): AsyncGenerator<string> {
  const query = options.pageSize === undefined ? '' : `?n=${options.pageSize}`;
  return paginate({
    transport: context.transport,
    registry: context.registry,
    retry: context.retry,
    path: `/v2/${context.name}/tags/list${query}`,
    scopes: scopes(context, 'pull'),
    repository: context.name,
    notFoundCode: 'NAME_UNKNOWN',
    items: (body) => strings((body as { tags?: unknown } | null)?.tags),
    signal: options.signal,
  });
}

/** The strings of a JSON array (`null`, as registries send for no tags, is empty). */
export function strings(value: unknown): string[] {
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === 'string')
    : [];
}
