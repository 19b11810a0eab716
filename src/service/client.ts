import type { Readable } from 'node:stream';
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import { type CacheConfig, DEFAULT_CACHE_CONFIG_LIMIT } from '../cache/config.ts';
import { parseCacheConfig } from '../cache/config-parse.ts';
import type { PruneCacheOptions } from '../cache/prune.ts';
import { type ErrorCode, isErrorCode, OciferryError, SizeExceededError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import { networkError } from '../registry/errors.ts';
import {
  parseRetryAfter,
  type RetryOptions,
  type RetryPolicy,
  retryPolicy,
  withRetry,
} from '../registry/retry.ts';
import { UrlProvider, type UrlProviderOptions } from '../remote/url-provider.ts';
import type {
  CacheMount,
  ExportRecord,
  MintedServiceUrl,
  PruneResponse,
  ServiceConfig,
  UpdateLayersRequest,
  UpdateRecordsRequest,
} from './api.ts';
import { CacheServiceError } from './errors.ts';

/** Options of {@link CacheServiceClient}. */
export interface CacheServiceClientOptions {
  /** Base URL of the service, e.g. `http://127.0.0.1:7450`. */
  url: string;
  /** Bearer token; never shown in errors. */
  token: string;
  /** Engine id sent with updates; default `ociferry`. */
  engineID?: string;
  /** undici dispatcher (TLS options, pool); default undici's global one. */
  dispatcher?: Dispatcher;
  /**
   * How calls safe to repeat are retried after a lost connection, 429 or a 5xx (a load balancer's
   * 502/503 among them), honouring `Retry-After`: the registry client's policy, by default 5
   * attempts with a capped, jittered exponential backoff from 250 ms.
   */
  retry?: RetryOptions;
}

/** A body an upload can send again: bytes, or a function opening the stream anew. */
export type ReplayableBody = Buffer | (() => Readable | Buffer | Promise<Readable | Buffer>);

/** Options of every call. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** How one call may be repeated. */
type Repeat =
  /** Safe to repeat: retried on every retryable failure. */
  | 'idempotent'
  /** Not safe to repeat: retried only when the connection could not be opened (nothing was sent). */
  | 'once'
  /** Not retried here: a caller retries a larger operation around it. */
  | 'never';

/**
 * A typed client of the cache service API (docs/cache-service.md): one method per API method,
 * blob transfers over the URLs it mints, and a {@link UrlProvider} for lazy layer reads. Errors are
 * {@link CacheServiceError}s with the service's code. Every method but {@link prune} is safe to
 * repeat (records, links, results and blobs are upserts; minting has no effect until a URL is
 * used) and is retried as {@link CacheServiceClientOptions.retry} says; uploads are retried when
 * their body can be sent again.
 */
export class CacheServiceClient {
  readonly url: string;
  readonly engineID: string;
  readonly #token: string;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #retry: RetryPolicy;
  /** URLs minted through this client, by operation: what a test or a report counts. */
  readonly minted = { upload: 0, download: 0, mountUpload: 0 };

  constructor(options: CacheServiceClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.#token = options.token;
    this.engineID = options.engineID ?? 'ociferry';
    this.#dispatcher = options.dispatcher;
    this.#retry = retryPolicy(options.retry);
  }

  /** GetConfig: limits and accepted media types. */
  getConfig(options: CallOptions = {}): Promise<ServiceConfig> {
    return this.#json('GET', '/v1/config', undefined, options);
  }

  /** UpdateCacheRecords: report records and links; answers the records to export. */
  async updateCacheRecords(
    update: Omit<UpdateRecordsRequest, 'engineID'>,
    options: CallOptions = {},
  ): Promise<ExportRecord[]> {
    const body = { engineID: this.engineID, ...update };
    const answer = await this.#json<{ exportRecords: ExportRecord[] }>(
      'POST',
      '/v1/records',
      body,
      options,
    );
    return answer.exportRecords;
  }

  /** UpdateCacheLayers: the layers of exported results; answers how many results were new. */
  async updateCacheLayers(
    update: Omit<UpdateLayersRequest, 'engineID'>,
    options: CallOptions = {},
  ): Promise<number> {
    const body = { engineID: this.engineID, ...update };
    return (await this.#json<{ results: number }>('POST', '/v1/layers', body, options)).results;
  }

  /** ImportCache: the namespace's cumulative cache, parsed and validated. */
  async importCache(options: CallOptions & { limit?: number } = {}): Promise<CacheConfig> {
    const bytes = await this.importCacheBytes(options);
    const parsed = await parseCacheConfig(bytes, {
      limit: options.limit,
      origin: `${this.url}/v1/import`,
      signal: options.signal,
    });
    return parsed.config;
  }

  /**
   * ImportCache as the document's bytes, refused past `limit` (default 16 MiB) with
   * `SIZE_EXCEEDED`: what a cache source wraps as its config blob.
   */
  async importCacheBytes(options: CallOptions & { limit?: number } = {}): Promise<Buffer> {
    const { limit = DEFAULT_CACHE_CONFIG_LIMIT } = options;
    return this.#call('GET', '/v1/import', undefined, options, 'idempotent', async (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length;
        if (size > limit) {
          response.body.destroy();
          throw new SizeExceededError({ what: 'cache config', size, limit });
        }
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks);
    });
  }

  /**
   * Prune the namespace with the limits of `ociferry cache prune` (`keepNewer` in milliseconds, as
   * the library's limits), then have the service collect the blobs no namespace holds. Not safe to
   * repeat (a lost answer may hide a prune that was done): retried only when the connection could
   * not be opened. Limits keeping no result are refused with CACHE_EMPTY.
   */
  prune(
    limits: Pick<PruneCacheOptions, 'keepLast' | 'keepNewer' | 'maxSize' | 'maxConfigSize'> = {},
    options: CallOptions = {},
  ): Promise<PruneResponse> {
    const { keepNewer, ...rest } = limits;
    const body = { ...rest, ...(keepNewer === undefined ? {} : { keepNewer: keepNewer / 1000 }) };
    return this.#json('POST', '/v1/prune', body, options, 'once');
  }

  /** GetLayerUploadURL. */
  getLayerUploadUrl(
    digest: string,
    size?: number,
    options: CallOptions = {},
  ): Promise<MintedServiceUrl> {
    return this.#mintUpload(digest, size, options, 'idempotent');
  }

  #mintUpload(
    digest: string,
    size: number | undefined,
    options: CallOptions,
    repeat: Repeat,
  ): Promise<MintedServiceUrl> {
    this.minted.upload++;
    return this.#json('POST', '/v1/layer-upload-url', { digest, size }, options, repeat);
  }

  /** GetLayerDownloadURL. */
  getLayerDownloadUrl(digest: string, options: CallOptions = {}): Promise<MintedServiceUrl> {
    return this.#mintDownload(digest, options, 'idempotent');
  }

  #mintDownload(digest: string, options: CallOptions, repeat: Repeat): Promise<MintedServiceUrl> {
    this.minted.download++;
    return this.#json('POST', '/v1/layer-download-url', { digest }, options, repeat);
  }

  /** GetCacheMountConfig: the namespace's cache mounts with download URLs. */
  async getCacheMountConfig(options: CallOptions = {}): Promise<CacheMount[]> {
    return (
      await this.#json<{ mounts: CacheMount[] }>('GET', '/v1/cache-mounts', undefined, options)
    ).mounts;
  }

  /** GetCacheMountUploadURL. */
  getCacheMountUploadUrl(
    name: string,
    digest: string,
    size: number,
    options: CallOptions = {},
  ): Promise<MintedServiceUrl> {
    return this.#mintMountUpload(name, digest, size, options, 'idempotent');
  }

  #mintMountUpload(
    name: string,
    digest: string,
    size: number,
    options: CallOptions,
    repeat: Repeat,
  ): Promise<MintedServiceUrl> {
    this.minted.mountUpload++;
    const body = { name, digest, size };
    return this.#json('POST', '/v1/cache-mount-upload-url', body, options, repeat);
  }

  /**
   * Upload one blob: mint a URL right before, then stream `body` to it (skipped when the service
   * already holds the blob and `body` is a function, which is then never called). A body that can
   * be sent again ({@link ReplayableBody}) is, with a fresh URL, after a retryable failure.
   */
  uploadLayer(
    desc: { digest: string; size: number },
    body: Readable | ReplayableBody,
    options: CallOptions = {},
  ): Promise<{ uploaded: boolean }> {
    return this.#upload(body, options, async (repeat) => {
      const minted = await this.#mintUpload(desc.digest, desc.size, options, repeat);
      if (minted.exists && typeof body === 'function') return undefined;
      return { url: minted.url, size: desc.size };
    });
  }

  /** Upload a cache mount tarball under `name` (retried as {@link uploadLayer} is). */
  async uploadCacheMount(
    name: string,
    desc: { digest: string; size: number },
    body: Readable | ReplayableBody,
    options: CallOptions = {},
  ): Promise<void> {
    await this.#upload(body, options, async (repeat) => {
      const minted = await this.#mintMountUpload(name, desc.digest, desc.size, options, repeat);
      return { url: minted.url, size: desc.size };
    });
  }

  /**
   * Mint (`mint` answers the URL, or undefined to skip) and PUT `body`; the pair is retried as one
   * when `body` can be sent again, else the mint alone is.
   */
  async #upload(
    body: Readable | ReplayableBody,
    options: CallOptions,
    mint: (repeat: Repeat) => Promise<{ url: string; size: number } | undefined>,
  ): Promise<{ uploaded: boolean }> {
    const replayable = Buffer.isBuffer(body) || typeof body === 'function';
    const attempt = async (): Promise<{ uploaded: boolean }> => {
      const target = await mint(replayable ? 'never' : 'idempotent');
      if (!target) return { uploaded: false };
      const bytes = typeof body === 'function' ? await body() : body;
      await this.#put(target.url, target.size, bytes, options);
      return { uploaded: true };
    };
    return replayable ? withRetry(this.#retry, attempt, options.signal) : attempt();
  }

  /**
   * PUT `body` (of `size` bytes) to a minted upload URL; retried when `body` is bytes (a stream is
   * sent once: use {@link uploadLayer} with a function to have it reopened).
   */
  putUrl(
    url: string,
    size: number,
    body: Readable | Buffer,
    options: CallOptions = {},
  ): Promise<void> {
    const put = () => this.#put(url, size, body, options);
    return Buffer.isBuffer(body) ? withRetry(this.#retry, put, options.signal) : put();
  }

  async #put(
    url: string,
    size: number,
    body: Readable | Buffer,
    options: CallOptions,
  ): Promise<void> {
    const response = await this.#request(url, '/v1/blobs', 'idempotent', {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      signal: options.signal,
    });
    if (response.statusCode !== 201) throw await errorOf(response, 'PUT', '/v1/blobs');
    await response.body.dump();
  }

  /** GET a minted download URL (optionally a range); the body stream, its request retried. */
  getUrl(url: string, options: CallOptions & { range?: string } = {}): Promise<Readable> {
    return withRetry(
      this.#retry,
      async () => {
        const response = await this.#request(url, '/v1/blobs', 'idempotent', {
          method: 'GET',
          headers: options.range ? { range: options.range } : {},
          signal: options.signal,
        });
        if (response.statusCode !== 200 && response.statusCode !== 206) {
          throw await errorOf(response, 'GET', '/v1/blobs');
        }
        return response.body;
      },
      options.signal,
    );
  }

  /**
   * A provider of the namespace's layers that mints one download URL per read, right before it
   * (`known` lets `info` answer without a request, e.g. the layers of an imported cache).
   */
  provider(
    known: UrlProviderOptions['known'] = [],
    options: Omit<UrlProviderOptions, 'known'> = {},
  ): UrlProvider {
    return new UrlProvider(
      // Not retried here: the provider retries the mint and the read as one.
      async (descriptor: Descriptor, { signal }) => ({
        url: (await this.#mintDownload(descriptor.digest, { signal }, 'never')).url,
      }),
      { description: `cache service ${this.url}`, ...options, known },
    );
  }

  #json<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    options: CallOptions,
    repeat: Repeat = 'idempotent',
  ): Promise<T> {
    return this.#call(method, path, body, options, repeat, async (response) => {
      return (await response.body.json()) as T;
    });
  }

  /**
   * One API call: the request and the reading of its answer by `read`, repeated as a whole as
   * `repeat` allows.
   */
  #call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    options: CallOptions,
    repeat: Repeat,
    read: (response: Dispatcher.ResponseData) => Promise<T>,
  ): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const text = body === undefined ? undefined : JSON.stringify(body);
    const attempt = async (): Promise<T> => {
      const response = await this.#request(`${this.url}${path}`, path, repeat, {
        method,
        headers,
        body: text,
        signal: options.signal,
      });
      if (response.statusCode !== 200) {
        throw await errorOf(response, method, path, repeat === 'idempotent');
      }
      try {
        return await read(response);
      } catch (error) {
        throw this.#failure(error, method, path, repeat) ?? error;
      }
    };
    return repeat === 'never' ? attempt() : withRetry(this.#retry, attempt, options.signal);
  }

  /** One request; a failure below HTTP becomes a {@link CacheServiceError}. */
  async #request(
    url: string,
    path: string,
    repeat: Repeat,
    options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await send(this.#dispatcher, url, options);
    } catch (error) {
      if ((error as Error).name === 'AbortError' || error instanceof OciferryError) throw error;
      throw (
        this.#failure(error, options.method, path, repeat) ??
        new CacheServiceError(
          'CONNECTION_FAILED',
          `cannot reach the cache service at ${this.url}: ${(error as Error).message}`,
          { status: 0, cause: error, retryable: false },
        )
      );
    }
  }

  /**
   * A failure below HTTP (refused, reset, timed out) as a {@link CacheServiceError}, retryable
   * as `repeat` allows; undefined for anything else (an abort, one of our own errors).
   */
  #failure(
    error: unknown,
    method: string,
    path: string,
    repeat: Repeat,
  ): CacheServiceError | undefined {
    const network = networkError(error, method, `${this.url}${path}`);
    if (!network) return undefined;
    const refused = (error as { code?: unknown }).code === 'ECONNREFUSED';
    return new CacheServiceError(
      network.code,
      `cannot reach the cache service at ${this.url}: ${(error as Error).message}`,
      {
        status: 0,
        cause: error,
        retryable: network.retryable && (repeat === 'idempotent' || refused),
      },
    );
  }
}

/** The service's coded error from a non-success answer. */
async function errorOf(
  response: Dispatcher.ResponseData,
  method: string,
  path: string,
  repeatable = true,
): Promise<CacheServiceError> {
  let code: ErrorCode = 'STATUS_UNEXPECTED';
  let message = `${method} ${path} answered HTTP ${response.statusCode}`;
  try {
    const body = (await response.body.json()) as {
      errors?: { code?: unknown; message?: unknown }[];
    };
    const first = body.errors?.[0];
    const sent = first?.code;
    if (isErrorCode(sent)) code = sent;
    if (typeof first?.message === 'string') message = `${method} ${path}: ${first.message}`;
  } catch {
    // not JSON: keep the status
  }
  const retryAfter = response.headers['retry-after'];
  const status = response.statusCode;
  return new CacheServiceError(code, message, {
    status,
    retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
    ...(repeatable ? {} : { retryable: false }),
  });
}

/** One request through `dispatcher` (default undici's global one). */
function send(
  dispatcher: Dispatcher | undefined,
  url: string,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
): Promise<Dispatcher.ResponseData> {
  const target = new URL(url);
  return (dispatcher ?? getGlobalDispatcher()).request({
    ...options,
    origin: target.origin,
    path: `${target.pathname}${target.search}`,
  });
}
