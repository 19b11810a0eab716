import type { ErrorCode } from '../errors.ts';
import { decodeJson } from '../oci/index.ts';
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
  notFoundCode?: ErrorCode;
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
 * the URL of the response that carried it and followed exactly as given. A `Link` back to a page
 * already read fails with `PAGINATION_LOOP` rather than end the list early without a word.
 */
export async function* paginate<T>(list: PagedList<T>): AsyncGenerator<T> {
  let next: URL | undefined;
  const seen = new Set<string>();
  let items = 0;
  for (let first = true; first || next !== undefined; first = false) {
    const pageUrl = next;
    const page = await withRetry(
      list.retry,
      async () => {
        const response = await list.transport.request(list.registry, {
          method: 'GET',
          ...(pageUrl === undefined ? { path: list.path } : { url: pageUrl }),
          headers: list.headers,
          scopes: list.scopes,
          repository: list.repository,
          expect: [200],
          notFoundCode: list.notFoundCode,
          signal: list.signal,
        });
        const bytes = await readBody(response, 'GET', PAGE_LIMIT, 'list page');
        return {
          url: pageUrl ?? response.url,
          body: parseJson(bytes, redactUrl(response.url)),
          next: nextLink(headerValues(response.headers, 'link'), response.url),
          headers: response.headers,
        };
      },
      list.signal,
    );
    seen.add(page.url.href);
    const pageItems = list.items(page.body, page.headers);
    items += pageItems.length;
    yield* pageItems;
    next = page.next;
    if (next !== undefined && (seen.has(next.href) || seen.size >= MAX_PAGES)) {
      const url = redactUrl(page.url);
      const why = seen.has(next.href)
        ? `a Link to ${redactUrl(next)}, a page already read`
        : `a Link to page ${MAX_PAGES + 1}`;
      throw new RegistryError({
        code: 'PAGINATION_LOOP',
        status: 200,
        method: 'GET',
        url,
        message: `GET ${url} answered with ${why}: the registry's pagination loops, so the list may be incomplete (items read: ${items}, pages: ${seen.size})`,
      });
    }
  }
}

/**
 * The `rel="next"` target of `Link` header values, resolved against `base`; undefined when no
 * value has `rel="next"` (the last page).
 * @throws RegistryError `LINK_INVALID` when one has it but its target cannot be read: ending the
 * list there would cut it short without a word
 */
export function nextLink(values: readonly string[], base: URL): URL | undefined {
  for (const value of values) {
    for (const match of value.matchAll(/<([^>]*)>([^,<]*)/g)) {
      const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(match[2] ?? '');
      const relations = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
      if (!relations.includes('next')) continue;
      if (URL.canParse(match[1] ?? '', base.href)) return new URL(match[1] ?? '', base);
      throw invalidLink(base, 'whose target is not a URL');
    }
  }
  const params = values.map((value) => value.replace(/<[^>]*>/g, ''));
  if (params.some((text) => /\brel\s*=\s*"?[^";,]*\bnext\b/i.test(text))) {
    throw invalidLink(base, 'that is not `<URL>; rel="next"`');
  }
  return undefined;
}

function invalidLink(base: URL, what: string): RegistryError {
  const url = redactUrl(base);
  return new RegistryError({
    code: 'LINK_INVALID',
    status: 200,
    method: 'GET',
    url,
    message: `GET ${url} answered with a rel="next" Link ${what}: the next page cannot be read, and ending the list here could leave items out`,
  });
}

function parseJson(bytes: Buffer, url: string): unknown {
  try {
    return decodeJson(bytes, `GET ${url}`);
  } catch (err) {
    throw new RegistryError({
      code: 'RESPONSE_INVALID',
      status: 200,
      method: 'GET',
      url,
      message: `GET ${url} answered with a body that is not JSON`,
      cause: err,
    });
  }
}
