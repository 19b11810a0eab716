import { isLoopbackRegistry } from '../reference/index.ts';

/**
 * Forward proxies of {@link HttpClient}. Each field left out is read from the environment (the
 * lower-case variable first): the proxies when the client is made, `NO_PROXY` at each request.
 * An empty string overrides the environment with "none".
 */
export interface ProxyOptions {
  /**
   * Proxy for `http://` origins; default `http_proxy`, else `HTTP_PROXY`. Requests go to it in
   * absolute form (`GET http://host/path`), as curl sends them.
   */
  http?: string;
  /**
   * Proxy for `https://` origins, reached through a `CONNECT` tunnel (TLS stays end to end);
   * default `https_proxy`, else `HTTPS_PROXY`. When that leaves none, `https://` origins use the
   * `http` proxy (list hosts in `noProxy` to reach them directly).
   */
  https?: string;
  /**
   * Hosts reached directly: a comma- or space-separated list of `host`, `host:port`, `.domain`
   * (the domain and every subdomain) or `*` (every host); default `no_proxy`, else `NO_PROXY`.
   * Hosts are matched by name as written in the URL (no DNS, no CIDR ranges). Loopback hosts
   * (`localhost`, 127.0.0.0/8, `[::1]`) are always reached directly, as Go programs (docker,
   * skopeo) do.
   */
  noProxy?: string;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** Which forward proxy, if any, a request goes through: the rules of {@link ProxyOptions}. */
export class ProxyRoutes {
  readonly #http: string | undefined;
  readonly #https: string | undefined;
  readonly #noProxy: string | undefined;
  readonly #env: NodeJS.ProcessEnv;

  constructor(options: ProxyOptions = {}, env: NodeJS.ProcessEnv = process.env) {
    this.#env = env;
    const named = proxyOptionsFromEnv(env);
    this.#http = options.http ?? named.http;
    this.#https = options.https ?? named.https;
    this.#noProxy = options.noProxy;
  }

  /** The proxy URL for a request to `url`, or undefined to connect directly. */
  proxyFor(url: URL): string | undefined {
    const proxy = (url.protocol === 'https:' ? this.#https || this.#http : this.#http) || undefined;
    if (proxy === undefined || isLoopbackRegistry(url.host)) return undefined;
    return this.#bypassed(url) ? undefined : proxy;
  }

  #bypassed(url: URL): boolean {
    const list = this.#noProxy ?? proxyOptionsFromEnv(this.#env).noProxy;
    if (list.trim() === '*') return true;
    // `host` keeps the brackets of an IPv6 address, which NO_PROXY entries are written with.
    const hostname = url.host.replace(/:\d*$/, '').toLowerCase();
    const port = Number(url.port) || DEFAULT_PORTS[url.protocol] || 0;
    for (const entry of list.split(/[,\s]/)) {
      if (entry === '') continue;
      const parsed = /^(.+):(\d+)$/.exec(entry);
      const name = (parsed?.[1] ?? entry).replace(/^\*?\./, '').toLowerCase();
      if (parsed && Number(parsed[2]) !== port) continue;
      if (hostname === name || hostname.endsWith(`.${name}`)) return true;
    }
    return false;
  }
}

/**
 * The proxies `env` names, read as {@link ProxyOptions} reads them (lower-case variable first),
 * with every field set: '' where `env` names none, so that a client given them ignores the
 * process environment.
 */
export function proxyOptionsFromEnv(env: NodeJS.ProcessEnv): Required<ProxyOptions> {
  return {
    http: env.http_proxy ?? env.HTTP_PROXY ?? '',
    https: env.https_proxy ?? env.HTTPS_PROXY ?? '',
    noProxy: env.no_proxy ?? env.NO_PROXY ?? '',
  };
}

/** `url` without its user info (proxy URLs may carry credentials). */
export function describeProxy(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.origin;
  } catch {
    return 'the configured proxy';
  }
}
