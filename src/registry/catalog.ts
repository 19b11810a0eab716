import { CATALOG_SCOPE } from './auth/scope.ts';
import { paginate } from './pagination.ts';
import type { RetryPolicy } from './retry.ts';
import { strings } from './tags.ts';
import type { Transport } from './transport.ts';

/** Options of {@link listCatalog}. */
export interface CatalogOptions {
  /** Repositories per page (`n`); default: the registry's choice. */
  pageSize?: number;
  signal?: AbortSignal;
}

/** Every repository name of a registry (`GET /v2/_catalog`), following `Link` pagination. */
export function listCatalog(
  transport: Transport,
  registry: string,
  retry: RetryPolicy,
  options: CatalogOptions = {},
): AsyncGenerator<string> {
  const query = options.pageSize === undefined ? '' : `?n=${options.pageSize}`;
  return paginate({
    transport,
    registry,
    retry,
    path: `/v2/_catalog${query}`,
    scopes: [CATALOG_SCOPE],
    items: (body) => strings((body as { repositories?: unknown } | null)?.repositories),
    signal: options.signal,
  });
}
