import type { Readable } from 'node:stream';
import { verifiedStream } from '../digest/index.ts';
import { OciferryError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import { discardBody } from '../registry/body.ts';
import type { RegistryClient } from '../registry/client.ts';
import { RegistryError } from '../registry/errors.ts';
import { headerValue } from '../registry/http.ts';
import { redactUrl } from '../registry/redact.ts';
import { parseRetryAfter, withRetry } from '../registry/retry.ts';
import { type ContextOptions, contextOf } from './ociferry-context.ts';
import type { BlobInfo, FetchOptions, Provider } from './provider.ts';

/** A URL minted for one read, with the headers it needs (e.g. a service token). */
export interface MintedUrl {
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Mints a fresh, usually time-limited, URL for a blob right before it is read. */
export type UrlMinter = (
  descriptor: Descriptor,
  options: { signal?: AbortSignal },
) => Promise<MintedUrl>;

/**
 * Reading a blob from its minted URL failed: code `URL_FETCH_FAILED` with the HTTP status, or the
 * code of a failure below HTTP (`TIMEOUT`, `CONNECTION_FAILED`, `TLS_ERROR`, ...). The message
 * never shows the URL; `cause` keeps the request's error, whose URL has its query values redacted.
 */
export class UrlFetchError extends OciferryError {
  /** The last answer's HTTP status; undefined when none arrived. */
  readonly status: number | undefined;

  constructor(digest: string, source: string, cause: RegistryError) {
    const status = cause.status;
    const why = status === undefined ? `(${cause.code})` : `with HTTP ${status}`;
    super(
      status === undefined ? cause.code : 'URL_FETCH_FAILED',
      `reading ${digest} from ${source} through its minted URL failed ${why}`,
      { cause },
    );
    this.status = status;
  }
}

/** Options of {@link UrlProvider}. */
export interface UrlProviderOptions extends ContextOptions {
  /** Names the service in progress and errors; default `cache service`. */
  description?: string;
  /** The blobs the service holds, so {@link UrlProvider.info} needs no request. */
  known?: readonly BlobInfo[];
  /**
   * Sends the reads, with its timeouts, per-host limit, proxies, retry policy and request count;
   * default the context's client at the time of each read.
   */
  client?: RegistryClient;
}

/**
 * Blobs behind URLs that a callback mints just before each read, as cache services hand out
 * presigned URLs. Reads go through a registry client's HTTP layer: redirects are followed (a CDN
 * answering for the service) without the minted `Authorization` once the origin changes, 429, 5xx
 * and lost connections are retried with a freshly minted URL, and a URL that has expired by the time
 * it is used (401/403) is minted once more. Error messages never show the URL: it usually carries
 * a signature.
 */
export class UrlProvider implements Provider {
  readonly description: string;
  readonly #mint: UrlMinter;
  readonly #sizes: ReadonlyMap<string, number>;
  readonly #client: RegistryClient | undefined;
  readonly #context: ContextOptions;

  constructor(mint: UrlMinter, options: UrlProviderOptions = {}) {
    this.#mint = mint;
    this.description = options.description ?? 'cache service';
    this.#sizes = new Map((options.known ?? []).map((blob) => [blob.digest, blob.size]));
    this.#client = options.client;
    this.#context = { context: options.context };
  }

  async info(digest: string): Promise<BlobInfo | undefined> {
    const size = this.#sizes.get(digest);
    return size === undefined ? undefined : { digest, size };
  }

  async fetch(descriptor: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    const body = await this.#get(descriptor, options);
    if (options.range) return body;
    return verifiedStream(body, descriptor.digest, {
      size: descriptor.size,
      source: this.description,
    });
  }

  /** The response body of a GET of a freshly minted URL, retried as the client's policy says. */
  async #get(descriptor: Descriptor, options: FetchOptions): Promise<Readable> {
    const { range, signal } = options;
    const client = this.#client ?? contextOf(this.#context).client;
    let reminted = false;
    try {
      return await withRetry(
        client.retryPolicy,
        async () => {
          for (;;) {
            const minted = await this.#mint(descriptor, { signal });
            const headers = Object.fromEntries(
              Object.entries(minted.headers ?? {}).map(([name, value]) => [
                name.toLowerCase(),
                value,
              ]),
            );
            if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
            const url = new URL(minted.url);
            const response = await client.http.send({ method: 'GET', url, headers, signal });
            if (response.status === (range ? 206 : 200)) return response.body;
            await discardBody(response);
            if (!reminted && (response.status === 401 || response.status === 403)) {
              reminted = true;
              continue;
            }
            throw new RegistryError({
              status: response.status,
              method: 'GET',
              url: redactUrl(response.url),
              retryAfterMs: parseRetryAfter(headerValue(response.headers, 'retry-after')),
            });
          }
        },
        signal,
      );
    } catch (error) {
      if (error instanceof RegistryError) {
        throw new UrlFetchError(descriptor.digest, this.description, error);
      }
      throw error;
    }
  }
}
