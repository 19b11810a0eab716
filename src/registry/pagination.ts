import { readBody } from './body.ts';
import { RegistryError } from './errors.ts';
import { headerValues } from './http.ts';
import { redactUrl } from './redact.ts';
import { type RetryPolicy, withRetry } from './retry.ts';
import type { Transport } from './transport.ts';

/** A paginated list endpoint (tags, catalog, referrers) and how to read one page of it. */
export interface PagedList<T> {
  transport: Transport;
  registry: string;
  retry: RetryPolicy;
  /** First page: path and query under the registry's base URL. */
  path: string;
  scopes: readonly string[];
  repository?: string;
  headers?: Record<string, string>;
  notFoundCode?: string;
  /** Items of one parsed page, plus anything the page's headers say. */
  items: (body: unknown, headers: Record<string, string | string[] | undefined>) => readonly T[];
  signal?: AbortSignal;
}

/** Largest page read into memory (tag lists of big repositories run to megabytes). */
const PAGE_LIMIT = 16 * 1024 * 1024;
/** Most pages followed; a registry whose `Link` chain is longer is looping. */
const MAX_PAGES = 100_000;

/**
 * Every item of a paginated list, page by page: each `Link: <url>; rel="next"` is resolved against
 * the URL of the request that returned it and followed exactly as given.
 */
export async function* paginate<T>(list: PagedList<T>): AsyncGenerator<T> {
  let url: URL | undefined = new URL(list.path, list.transport.baseUrl(list.registry));
  const seen = new Set<string>();
  for (let page = 0; url !== undefined && page < MAX_PAGES; page++) {
    seen.add(url.href);
    const pageUrl: URL = url;
    const { body, next, headers } = await withRetry(
      list.retry,
      async () => {
        const response = await list.transport.request(list.registry, {
          method: 'GET',
          url: pageUrl,
          headers: list.headers,
          scopes: list.scopes,
          repository: list.repository,
          expect: [200],
          notFoundCode: list.notFoundCode,
          signal: list.signal,
        });
        const bytes = await readBody(response, 'GET', PAGE_LIMIT, 'list page');
        return {
          body: parseJson(bytes, redactUrl(response.url)),
          next: nextLink(headerValues(response.headers, 'link'), pageUrl),
          headers: response.headers,
        };
      },
      list.signal,
    );
    yield* list.items(body, headers);
    url = next !== undefined && !seen.has(next.href) ? next : undefined;
  }
}

/** The `rel="next"` target of `Link` header values, resolved against `base`. */
export function nextLink(values: readonly string[], base: URL): URL | undefined {
  for (const value of values) {
    for (const match of value.matchAll(/<([^>]*)>([^,<]*)/g)) {
      const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(match[2] ?? '');
      const relations = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
      if (!relations.includes('next')) continue;
      try {
        return new URL(match[1] ?? '', base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function parseJson(bytes: Buffer, url: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RegistryError({
      code: 'UNEXPECTED_RESPONSE',
      status: 200,
      method: 'GET',
      url,
      message: `GET ${url} answered with a body that is not JSON`,
      cause: err,
    });
  }
}
