import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, Pool, ProxyAgent } from 'undici';
import { Limiter } from '../util/limiter.ts';
import { networkError, RegistryError } from './errors.ts';
import { type ProxyOptions, ProxyRoutes } from './proxy.ts';
import { redactUrl } from './redact.ts';

export type { ProxyOptions } from './proxy.ts';

/** HTTP methods the registry protocol uses. */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Response headers as undici gives them: lower-case names, repeated headers as arrays. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** One HTTP exchange to send. Header names are lower-case. */
export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  /** A stream is sent once; a byte array can be sent again (redirects, retries). */
  body?: Uint8Array | Readable;
  signal?: AbortSignal;
  /** Follow redirects of GET and HEAD; default true. */
  followRedirects?: boolean;
  /** Vets each redirect target before it is followed; throws to refuse it. */
  checkRedirect?: (next: URL) => Promise<void>;
  /**
   * Wait for a slot of the host's limiter; default true. False only for requests that continue a
   * transfer already admitted (a download resuming with `Range`), so that they cannot deadlock
   * behind requests waiting on them.
   */
  queue?: boolean;
}

/** A response whose headers have arrived; the body must be consumed or destroyed. */
export interface HttpResponse {
  status: number;
  headers: ResponseHeaders;
  body: Dispatcher.ResponseData['body'];
  /** URL that answered, after redirects. */
  url: URL;
}

/** Timeouts of {@link HttpClient}, in milliseconds. */
export interface HttpTimeouts {
  /** TCP + TLS connect; default 30 s. */
  connectMs?: number;
  /** From the end of the request to the response headers; default 120 s. */
  headersMs?: number;
  /** Longest gap between two chunks of a response body; default 120 s. */
  bodyIdleMs?: number;
}

/** What {@link HttpClient} reports for each exchange (one per redirect hop). */
export interface RequestEvent {
  method: string;
  /** Redacted: no user info, no secret query values. */
  url: string;
  /** 0 when no response arrived. */
  status: number;
}

/** Options of {@link HttpClient}. */
export interface HttpClientOptions {
  /**
   * Skip TLS certificate verification: for every host, or for the hosts (`name[:port]` as in a
   * URL) listed; default false.
   */
  insecure?: boolean | readonly string[];
  /** Requests in flight per host (until their response headers); default 8. */
  concurrency?: number;
  /** `User-Agent` header; default `ociferry`. */
  userAgent?: string;
  timeouts?: HttpTimeouts;
  /** Forward proxies; default from `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (see {@link ProxyOptions}). */
  proxy?: ProxyOptions;
  onRequest?: (event: RequestEvent) => void;
  /** Called once per distinct `Warning` header text. */
  onWarning?: (warning: string) => void;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/**
 * HTTP for the registry client: one keep-alive pool per origin (undici `Agent`, or a `ProxyAgent`
 * where `HTTP(S)_PROXY`/`NO_PROXY` or {@link ProxyOptions} send the request through a proxy; never
 * for loopback hosts), a concurrency limit per host, timeouts, and redirects followed by our code
 * with `Authorization` dropped once the origin changes.
 */
export class HttpClient {
  /** Dispatchers by whether they verify certificates and by proxy, made on first use. */
  readonly #dispatchers = new Map<string, Dispatcher>();
  readonly #insecure: (host: string) => boolean;
  readonly #proxies: ProxyRoutes;
  readonly #limiters = new Map<string, Limiter>();
  readonly #concurrency: number;
  readonly #userAgent: string;
  readonly #timeouts: Required<HttpTimeouts>;
  readonly #onRequest: ((event: RequestEvent) => void) | undefined;
  readonly #onWarning: ((warning: string) => void) | undefined;
  readonly #warnings = new Set<string>();
  /**
   * Per caller signal, one that follows it and takes any number of listeners: each request in
   * flight listens, and a copy sends a hundred at once on one signal.
   */
  readonly #fanOut = new WeakMap<AbortSignal, AbortSignal>();
  #requestCount = 0;

  constructor(options: HttpClientOptions = {}) {
    this.#concurrency = options.concurrency ?? 8;
    this.#userAgent = options.userAgent ?? 'ociferry';
    this.#timeouts = {
      connectMs: options.timeouts?.connectMs ?? 30_000,
      headersMs: options.timeouts?.headersMs ?? 120_000,
      bodyIdleMs: options.timeouts?.bodyIdleMs ?? 120_000,
    };
    this.#onRequest = options.onRequest;
    this.#onWarning = options.onWarning;
    this.#proxies = new ProxyRoutes(options.proxy);
    const insecure = options.insecure ?? false;
    if (typeof insecure === 'boolean') {
      this.#insecure = () => insecure;
    } else {
      const hosts = new Set(insecure.map((host) => host.toLowerCase()));
      this.#insecure = (host) => hosts.has(host.toLowerCase());
    }
  }

  /**
   * The dispatcher for `url` (one that skips certificate checks only for an insecure host) and
   * the proxy it goes through, if any.
   */
  #dispatcherFor(url: URL): { dispatcher: Dispatcher; proxy: string | undefined } {
    const verify = url.protocol !== 'https:' || !this.#insecure(url.host);
    const proxy = this.#proxies.proxyFor(url);
    const key = `${verify}\n${proxy ?? ''}`;
    let dispatcher = this.#dispatchers.get(key);
    if (!dispatcher) {
      const { headersMs, bodyIdleMs } = this.#timeouts;
      const options = {
        connect: { timeout: this.#timeouts.connectMs, rejectUnauthorized: verify },
        headersTimeout: headersMs,
        bodyTimeout: bodyIdleMs,
      };
      dispatcher =
        proxy === undefined
          ? new Agent(options)
          : new ProxyAgent({
              ...options,
              uri: proxy,
              proxyTunnel: false,
              requestTls: { rejectUnauthorized: verify },
              // undici opens the pool to an absolute-form proxy with no options of ours: our timeouts.
              factory: (origin, pool) =>
                new Pool(origin, { ...pool, headersTimeout: headersMs, bodyTimeout: bodyIdleMs }),
            });
      this.#dispatchers.set(key, dispatcher);
    }
    return { dispatcher, proxy };
  }

  /** HTTP exchanges sent so far, redirect hops included. */
  get requestCount(): number {
    return this.#requestCount;
  }

  /** Send `request`, following redirects; network failures become {@link RegistryError}s. */
  async send(request: HttpRequest): Promise<HttpResponse> {
    const signal = request.signal && this.#fannedOut(request.signal);
    const sent = { ...request, signal };
    if (request.queue === false) return this.#exchange(sent);
    return this.#limiter(request.url.host).run(() => this.#exchange(sent), signal);
  }

  #fannedOut(signal: AbortSignal): AbortSignal {
    let fanned = this.#fanOut.get(signal);
    if (!fanned) {
      fanned = AbortSignal.any([signal]);
      setMaxListeners(0, fanned);
      this.#fanOut.set(signal, fanned);
    }
    return fanned;
  }

  /** Close every pooled connection. */
  async close(): Promise<void> {
    await Promise.all([...this.#dispatchers.values()].map((dispatcher) => dispatcher.close()));
  }

  #limiter(host: string): Limiter {
    let limiter = this.#limiters.get(host);
    if (!limiter) {
      limiter = new Limiter(this.#concurrency);
      this.#limiters.set(host, limiter);
    }
    return limiter;
  }

  async #exchange(request: HttpRequest): Promise<HttpResponse> {
    const startOrigin = request.url.origin;
    let method = request.method;
    let url = request.url;
    let body = request.body;
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...request.headers };
    for (let hop = 0; ; hop++) {
      const response = await this.#once(method, url, headers, body, request.signal);
      const location = response.headers.location;
      const follow =
        (request.followRedirects ?? true) &&
        (method === 'GET' || method === 'HEAD') &&
        REDIRECTS.has(response.status) &&
        typeof location === 'string';
      if (!follow) return response;
      await response.body.dump().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError({
          code: 'TOO_MANY_REDIRECTS',
          method: request.method,
          url: redactUrl(request.url),
          message: `${request.method} ${redactUrl(request.url)}: more than ${MAX_REDIRECTS} redirects`,
        });
      }
      const next = new URL(location, url);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new RegistryError({
          code: 'STATUS_UNEXPECTED',
          method,
          url: redactUrl(url),
          message: `${method} ${redactUrl(url)} redirected to an unsupported scheme ${next.protocol}`,
        });
      }
      await request.checkRedirect?.(next);
      if (next.origin !== startOrigin) delete headers.authorization;
      if (response.status === 303 && method !== 'HEAD') method = 'GET';
      body = method === 'GET' || method === 'HEAD' ? undefined : body;
      url = next;
    }
  }

  async #once(
    method: HttpMethod,
    url: URL,
    headers: Record<string, string>,
    body: Uint8Array | Readable | undefined,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    this.#requestCount++;
    const { dispatcher, proxy } = this.#dispatcherFor(url);
    let response: Dispatcher.ResponseData;
    try {
      response = await dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        body: body ?? null,
        signal: signal ?? null,
      });
    } catch (err) {
      this.#onRequest?.({ method, url: redactUrl(url), status: 0 });
      signal?.throwIfAborted();
      throw networkError(err, method, redactUrl(url), proxy) ?? err;
    }
    this.#onRequest?.({ method, url: redactUrl(url), status: response.statusCode });
    this.#reportWarnings(response.headers.warning);
    return { status: response.statusCode, headers: response.headers, body: response.body, url };
  }

  #reportWarnings(header: string | string[] | undefined): void {
    if (header === undefined || !this.#onWarning) return;
    for (const line of Array.isArray(header) ? header : [header]) {
      for (const match of line.matchAll(/\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"/g)) {
        const text = (match[1] ?? '').replace(/\\(.)/g, '$1');
        if (this.#warnings.has(text)) continue;
        this.#warnings.add(text);
        this.#onWarning(text);
      }
    }
  }
}

/** First value of response header `name` (lower-case). */
export function headerValue(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Every value of response header `name` (lower-case), repeated headers included. */
export function headerValues(headers: ResponseHeaders, name: string): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
