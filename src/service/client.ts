import type { Readable } from 'node:stream';
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import { type CacheConfig, DEFAULT_CACHE_CONFIG_LIMIT } from '../cache/config.ts';
import { parseCacheConfig } from '../cache/config-parse.ts';
import { type ErrorCode, isErrorCode, SizeExceededError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import { UrlProvider, type UrlProviderOptions } from '../remote/url-provider.ts';
import type {
  CacheMount,
  ExportRecord,
  MintedServiceUrl,
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
}

/** Options of every call. */
export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * A typed client of the cache service API (docs/cache-service.md): one method per API method,
 * blob transfers over the URLs it mints, and a {@link UrlProvider} for lazy layer reads. Errors are
 * {@link CacheServiceError}s with the service's code.
 */
export class CacheServiceClient {
  readonly url: string;
  readonly engineID: string;
  readonly #token: string;
  readonly #dispatcher: Dispatcher | undefined;
  /** URLs minted through this client, by operation: what a test or a report counts. */
  readonly minted = { upload: 0, download: 0, mountUpload: 0 };

  constructor(options: CacheServiceClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.#token = options.token;
    this.engineID = options.engineID ?? 'ociferry';
    this.#dispatcher = options.dispatcher;
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
  async importCache(options: CallOptions = {}): Promise<CacheConfig> {
    const response = await this.#send('GET', '/v1/import', undefined, options);
    const parsed = await parseCacheConfig(response.body, {
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
    const response = await this.#send('GET', '/v1/import', undefined, options);
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
  }

  /** GetLayerUploadURL. */
  async getLayerUploadUrl(
    digest: string,
    size?: number,
    options: CallOptions = {},
  ): Promise<MintedServiceUrl> {
    this.minted.upload++;
    return this.#json('POST', '/v1/layer-upload-url', { digest, size }, options);
  }

  /** GetLayerDownloadURL. */
  async getLayerDownloadUrl(digest: string, options: CallOptions = {}): Promise<MintedServiceUrl> {
    this.minted.download++;
    return this.#json('POST', '/v1/layer-download-url', { digest }, options);
  }

  /** GetCacheMountConfig: the namespace's cache mounts with download URLs. */
  async getCacheMountConfig(options: CallOptions = {}): Promise<CacheMount[]> {
    return (
      await this.#json<{ mounts: CacheMount[] }>('GET', '/v1/cache-mounts', undefined, options)
    ).mounts;
  }

  /** GetCacheMountUploadURL. */
  async getCacheMountUploadUrl(
    name: string,
    digest: string,
    size: number,
    options: CallOptions = {},
  ): Promise<MintedServiceUrl> {
    this.minted.mountUpload++;
    return this.#json('POST', '/v1/cache-mount-upload-url', { name, digest, size }, options);
  }

  /**
   * Upload one blob: mint a URL right before, then stream `body` to it (skipped when the service
   * already holds the blob and `body` is a function, which is then never called).
   */
  async uploadLayer(
    desc: { digest: string; size: number },
    body: Readable | Buffer | (() => Readable | Buffer),
    options: CallOptions = {},
  ): Promise<{ uploaded: boolean }> {
    const minted = await this.getLayerUploadUrl(desc.digest, desc.size, options);
    if (minted.exists && typeof body === 'function') return { uploaded: false };
    await this.putUrl(minted.url, desc.size, typeof body === 'function' ? body() : body, options);
    return { uploaded: true };
  }

  /** Upload a cache mount tarball under `name`. */
  async uploadCacheMount(
    name: string,
    desc: { digest: string; size: number },
    body: Readable | Buffer,
    options: CallOptions = {},
  ): Promise<void> {
    const minted = await this.getCacheMountUploadUrl(name, desc.digest, desc.size, options);
    await this.putUrl(minted.url, desc.size, body, options);
  }

  /** PUT `body` (of `size` bytes) to a minted upload URL. */
  async putUrl(
    url: string,
    size: number,
    body: Readable | Buffer,
    options: CallOptions = {},
  ): Promise<void> {
    const response = await send(this.#dispatcher, url, {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      signal: options.signal,
    });
    if (response.statusCode !== 201) throw await errorOf(response, 'PUT', '/v1/blobs');
    await response.body.dump();
  }

  /** GET a minted download URL (optionally a range); the body stream. */
  async getUrl(url: string, options: CallOptions & { range?: string } = {}): Promise<Readable> {
    const response = await send(this.#dispatcher, url, {
      method: 'GET',
      headers: options.range ? { range: options.range } : {},
      signal: options.signal,
    });
    if (response.statusCode !== 200 && response.statusCode !== 206) {
      throw await errorOf(response, 'GET', '/v1/blobs');
    }
    return response.body;
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
      async (descriptor: Descriptor, { signal }) => ({
        url: (await this.getLayerDownloadUrl(descriptor.digest, { signal })).url,
      }),
      { description: `cache service ${this.url}`, ...options, known },
    );
  }

  async #json<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    options: CallOptions,
  ): Promise<T> {
    const response = await this.#send(method, path, body, options);
    return (await response.body.json()) as T;
  }

  async #send(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    options: CallOptions,
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Dispatcher.ResponseData;
    try {
      response = await send(this.#dispatcher, `${this.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: options.signal,
      });
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new CacheServiceError(
        'CONNECTION_FAILED',
        `cannot reach the cache service at ${this.url}: ${(error as Error).message}`,
        { status: 0, cause: error },
      );
    }
    if (response.statusCode !== 200) throw await errorOf(response, method, path);
    return response;
  }
}

/** The service's coded error from a non-success answer. */
async function errorOf(
  response: Dispatcher.ResponseData,
  method: string,
  path: string,
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
  return new CacheServiceError(code, message, { status: response.statusCode });
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
