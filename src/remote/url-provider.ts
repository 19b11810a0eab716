import type { Readable } from 'node:stream';
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import { verifiedStream } from '../digest/index.ts';
import { OciferryError } from '../errors.ts';
import type { Descriptor } from '../registry/oci.ts';
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

/** A minted URL answered with something other than the blob. */
export class UrlFetchError extends OciferryError {
  readonly status: number;

  constructor(digest: string, status: number) {
    super('URL_FETCH_FAILED', `reading ${digest} from its minted URL failed with HTTP ${status}`);
    this.status = status;
  }
}

/**
 * Blobs behind URLs that a callback mints just before each read, as cache services hand out
 * presigned URLs. A URL that has expired by the time it is used (401/403) is minted once more.
 * The URL itself never appears in errors: it usually carries a signature.
 */
export class UrlProvider implements Provider {
  readonly description: string;
  readonly #mint: UrlMinter;
  readonly #sizes: ReadonlyMap<string, number>;
  readonly #dispatcher: Dispatcher | undefined;

  /**
   * `known` lists the blobs the service holds, so {@link info} needs no request. `dispatcher`
   * sends the reads (a proxy agent, say); default undici's global dispatcher.
   */
  constructor(
    mint: UrlMinter,
    options: { description?: string; known?: readonly BlobInfo[]; dispatcher?: Dispatcher } = {},
  ) {
    this.#mint = mint;
    this.description = options.description ?? 'cache service';
    this.#sizes = new Map((options.known ?? []).map((blob) => [blob.digest, blob.size]));
    this.#dispatcher = options.dispatcher;
  }

  async info(digest: string): Promise<BlobInfo | undefined> {
    const size = this.#sizes.get(digest);
    return size === undefined ? undefined : { digest, size };
  }

  async fetch(descriptor: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    const body = await this.#get(descriptor, options, true);
    if (options.range) return body;
    return verifiedStream(body, descriptor.digest, {
      size: descriptor.size,
      source: this.description,
    });
  }

  async #get(descriptor: Descriptor, options: FetchOptions, mayRemint: boolean): Promise<Readable> {
    const minted = await this.#mint(descriptor, { signal: options.signal });
    const headers: Record<string, string> = { ...minted.headers };
    if (options.range) {
      headers.range = `bytes=${options.range.start}-${options.range.end ?? ''}`;
    }
    const url = new URL(minted.url);
    const response = await (this.#dispatcher ?? getGlobalDispatcher()).request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers,
      signal: options.signal,
    });
    const expected = options.range ? 206 : 200;
    if (response.statusCode === expected) return response.body;
    response.body.resume();
    if (mayRemint && (response.statusCode === 401 || response.statusCode === 403)) {
      return this.#get(descriptor, options, false);
    }
    throw new UrlFetchError(descriptor.digest, response.statusCode);
  }
}
