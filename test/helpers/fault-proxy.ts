/**
 * Fault-injection proxy for tests: sits in front of the real registry and, per rule, answers with an
 * error status, cuts or corrupts a response body, delays a request or redirects it to a second
 * "CDN" origin that records the headers it received. Everything else is forwarded untouched.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import type { AccessLogEntry } from './access-log.ts';

/** What a matching rule does to a request. */
export type FaultAction =
  /** Answer directly without contacting the registry, e.g. 429 + `Retry-After`, 500, 503. */
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Forward, then close the client connection after this many response-body bytes. */
  | { resetAfterBytes: number }
  /** Forward, but end the response cleanly after this many body bytes (`Content-Length` rewritten). */
  | { truncateAfterBytes: number }
  /** Forward this many response-body bytes, then send nothing more and keep the connection open. */
  | { stallAfterBytes: number }
  /** Forward, XOR-ing the response-body byte at this offset with 0xff. */
  | { flipByteAt: number }
  /** Wait this long before forwarding. */
  | { delayMs: number }
  /** Forward, let the target answer, then drop the client connection without a byte of it. */
  | { dropAnswer: true }
  /** Answer with a redirect (default 307) to the CDN origin, same path and query. */
  | { redirectToCdn: true; status?: 301 | 302 | 307 | 308 }
  /** Keep the request waiting until the test releases the hold, then forward it. */
  | { hold: Hold };

/**
 * Requests held back at the proxy until the test lets them go, and what their clients did
 * meanwhile: a test aborts a caller while its request is held and sees from the server's side
 * whether the request was given up (its connection closed) or still waits.
 */
export class Hold {
  readonly #events = new EventEmitter();
  #released = false;
  #arrived = 0;
  #abandoned = 0;

  constructor() {
    this.#events.setMaxListeners(0);
  }

  /** Requests that reached the hold so far. */
  get arrivedCount(): number {
    return this.#arrived;
  }

  /** Held requests whose client closed the connection before the hold was released. */
  get abandonedCount(): number {
    return this.#abandoned;
  }

  /** Resolves once `count` requests have reached the hold. */
  arrived(count = 1): Promise<void> {
    return this.#until(() => this.#arrived >= count);
  }

  /** Resolves once `count` held requests have been given up by their clients. */
  abandoned(count = 1): Promise<void> {
    return this.#until(() => this.#abandoned >= count);
  }

  /** Forward the requests held now and every later one. */
  release(): void {
    this.#released = true;
    this.#events.emit('change');
  }

  /** Waits until released (true) or until the client leaves first (false). */
  async enter(res: http.ServerResponse): Promise<boolean> {
    this.#arrived++;
    this.#events.emit('change');
    if (this.#released) return true;
    const left = new Promise<false>((resolve) => res.once('close', () => resolve(false)));
    const released = this.#until(() => this.#released).then(() => true as const);
    const outcome = await Promise.race([left, released]);
    if (!outcome) {
      this.#abandoned++;
      this.#events.emit('change');
    }
    return outcome;
  }

  #until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        this.#events.off('change', check);
        resolve();
      };
      this.#events.on('change', check);
    });
  }
}

/** A fault and the requests it applies to; the first live matching rule wins. */
export interface FaultRule {
  /** HTTP method to match (case-insensitive); any when omitted. */
  method?: string;
  /** Pattern searched in the request path including its query string; any when omitted. */
  path?: RegExp;
  /** How many matching requests to affect (default: unlimited); later ones skip this rule. */
  times?: number;
  /** Which origin the rule applies at: the proxy itself (default) or its CDN. */
  at?: 'proxy' | 'cdn';
  action: FaultAction;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /**
   * Token realms the target's challenges name, each replaced by another (a token server of the
   * test's own, whose record is the test's alone).
   */
  realms?: Record<string, string>;
}

/** A request as one of the two origins received it. */
export interface SeenRequest {
  method: string;
  /** Path and query as received (the CDN's without its `cdn-ticket`). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A running proxy and its CDN origin. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`: the client talks to this instead of the registry. */
  readonly url: string;
  /** `127.0.0.1:PORT` of {@link url}. */
  readonly host: string;
  /** The live rule list: tests may push rules while the proxy runs. */
  readonly rules: FaultRule[];
  /** How many times a rule fired. */
  hits(rule: FaultRule): number;
  /** Every request the proxy received, faulted or not, in arrival order. */
  readonly forwarded: SeenRequest[];
  /**
   * Every request the target answered (sent on by the proxy or its CDN), in the order of the
   * answers, as the target's access log records it: a test sharing the target with others counts
   * its own requests here. An entry is added before its answer reaches the client; its `bytes`
   * grow as the body is read from the target (a HEAD has none: the log counts the error body of
   * a failed one).
   */
  readonly answered: AccessLogEntry[];
  /** Most requests the proxy had in hand at once (received, not yet answered in full). */
  readonly peakInFlight: number;
  /** The CDN origin that redirects point at, and every request it received. */
  readonly cdn: { url: string; host: string; requests: SeenRequest[] };
  /** Closes both origins and every open connection; idempotent. */
  stop(): Promise<void>;
}

type BodyFault = Extract<
  FaultAction,
  | { resetAfterBytes: number }
  | { truncateAfterBytes: number }
  | { stallAfterBytes: number }
  | { flipByteAt: number }
>;

/** Query parameter carrying the id under which the proxy remembers a redirected request's credentials. */
const TICKET_PARAM = 'cdn-ticket';

/** Connection-scoped headers each hop sets for itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade']);

/**
 * Starts the proxy in front of `target` (a plain-HTTP registry base URL) plus its CDN origin, both on
 * 127.0.0.1; stops them when the test `t` ends. A redirect to the CDN carries a ticket (like a
 * presigned URL) under which the CDN reuses the Authorization of the redirected request when it
 * fetches from the target, so the client never has to send credentials to the CDN.
 */
export async function startFaultProxy(
  t: ExecutionContext | undefined,
  target: string,
  rules: FaultRule[] = [],
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const realms = options.realms ?? {};
  const origin = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const closing = new AbortController();
  const hitCounts = new Map<FaultRule, number>();
  const tickets = new Map<string, string>();
  const forwarded: SeenRequest[] = [];
  const answered: AccessLogEntry[] = [];
  const cdnRequests: SeenRequest[] = [];

  const pick = (at: 'proxy' | 'cdn', method: string, path: string): FaultAction | undefined => {
    for (const rule of rules) {
      if ((rule.at ?? 'proxy') !== at) continue;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue;
      if (rule.path !== undefined && path.search(rule.path) === -1) continue;
      const hits = hitCounts.get(rule) ?? 0;
      if (rule.times !== undefined && hits >= rule.times) continue;
      hitCounts.set(rule, hits + 1);
      return rule.action;
    }
    return undefined;
  };

  const proxy = http.createServer();
  const cdn = http.createServer();
  const [proxyUrl, cdnUrl] = await Promise.all([listen(proxy), listen(cdn)]);

  /** Applies the rule matching the request at `at`, forwarding to the target unless it answers. */
  const serve = async (
    at: 'proxy' | 'cdn',
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    headers: string[],
  ): Promise<void> => {
    const method = req.method ?? 'GET';
    const action = pick(at, method, path);
    // The name the client reached the proxy by (a forward proxy's client may use another).
    const rebaseTo = at === 'proxy' && req.headers.host ? `http://${req.headers.host}` : proxyUrl;
    if (action === undefined) {
      forward(req, res, path, headers, rebaseTo, undefined);
    } else if ('redirectToCdn' in action) {
      let location = `${cdnUrl}${path}`;
      if (req.headers.authorization !== undefined) {
        const ticket = randomUUID();
        tickets.set(ticket, req.headers.authorization);
        location += `${path.includes('?') ? '&' : '?'}${TICKET_PARAM}=${ticket}`;
      }
      res.writeHead(action.status ?? 307, { location, 'content-length': '0' });
      res.end();
    } else if ('status' in action) {
      res.writeHead(action.status, action.headers);
      res.end(action.body);
    } else if ('hold' in action) {
      if (await action.hold.enter(res)) forward(req, res, path, headers, rebaseTo, undefined);
    } else if ('dropAnswer' in action) {
      forward(req, res, path, headers, rebaseTo, 'drop');
    } else if ('delayMs' in action) {
      try {
        await sleep(action.delayMs, undefined, { signal: closing.signal });
      } catch {
        res.destroy();
        return;
      }
      if (!req.socket.destroyed) forward(req, res, path, headers, rebaseTo, undefined);
    } else {
      forward(req, res, path, headers, rebaseTo, action);
    }
  };

  /**
   * Sends the request on to the target and relays the answer, applying a body fault if given;
   * URLs of the target in `Location` and challenges are rebased onto `rebaseTo` (the proxy, by the
   * name the client used), realms named in `options.realms` replaced.
   */
  const forward = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    headers: string[],
    rebaseTo: string,
    fault: BodyFault | 'drop' | undefined,
  ): void => {
    const method = req.method ?? 'GET';
    const time = new Date();
    const upstream = http.request({
      host: origin.hostname,
      port: origin.port,
      method,
      path,
      headers,
      agent,
    });
    upstream.on('error', () => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-length': '0' }).end();
    });
    upstream.on('response', (answer) => {
      const q = path.indexOf('?');
      const entry: AccessLogEntry = {
        method,
        path: q < 0 ? path : path.slice(0, q),
        query: q < 0 ? '' : path.slice(q + 1),
        status: answer.statusCode ?? 0,
        bytes: 0,
        userAgent: String(req.headers['user-agent'] ?? ''),
        time,
      };
      answered.push(entry);
      answer.on('data', (chunk: Buffer) => {
        entry.bytes += chunk.length;
      });
      if (fault === 'drop') {
        answer.resume();
        answer.on('end', () => res.destroy());
        return;
      }
      const rebase = (url: string): string => {
        const realm = realms[url];
        if (realm !== undefined) return realm;
        if (!URL.canParse(url)) return url;
        const parsed = new URL(url);
        return parsed.origin === origin.origin
          ? `${rebaseTo}${parsed.pathname}${parsed.search}`
          : url;
      };
      const raw = responseHeaders(answer.rawHeaders, rebase, fault);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, raw);
      relayBody(answer, res, fault);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };

  let inFlight = 0;
  let peakInFlight = 0;
  proxy.on('request', (req, res) => {
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    res.once('close', () => inFlight--);
    const path = req.url ?? '/';
    forwarded.push({ method: req.method ?? 'GET', path, headers: req.headers });
    void serve('proxy', req, res, path, requestHeaders(req.rawHeaders, origin.host));
  });

  cdn.on('request', (req, res) => {
    const { path, ticket } = takeTicket(req.url ?? '/');
    const method = req.method ?? 'GET';
    cdnRequests.push({ method, path, headers: req.headers });
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' }).end();
      return;
    }
    const headers = requestHeaders(req.rawHeaders, origin.host, ['authorization']);
    const authorization = ticket === undefined ? undefined : tickets.get(ticket);
    if (authorization !== undefined) headers.push('Authorization', authorization);
    void serve('cdn', req, res, path, headers);
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      closing.abort();
      await Promise.all([close(proxy), close(cdn)]);
      agent.destroy();
    })();
    return stopped;
  };
  t?.teardown(stop);

  return {
    url: proxyUrl,
    host: new URL(proxyUrl).host,
    rules,
    hits: (rule) => hitCounts.get(rule) ?? 0,
    forwarded,
    answered,
    get peakInFlight() {
      return peakInFlight;
    },
    cdn: { url: cdnUrl, host: new URL(cdnUrl).host, requests: cdnRequests },
    stop,
  };
}

async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Request headers for the target: hop-by-hop ones and `dropped` removed, `Host` set to `host`. */
function requestHeaders(raw: string[], host: string, dropped: string[] = []): string[] {
  const out = ['Host', host];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (lower === 'host' || HOP_BY_HOP.has(lower) || dropped.includes(lower)) continue;
    out.push(name, raw[i + 1] as string);
  }
  return out;
}

/**
 * Response headers for the client: hop-by-hop ones removed, `Location` and a `WWW-Authenticate`
 * realm passed through `rebase`, `Content-Length` capped by a truncation.
 */
function responseHeaders(
  raw: string[],
  rebase: (url: string) => string,
  fault: BodyFault | undefined,
): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    let value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === 'location') value = rebase(value);
    if (lower === 'www-authenticate') {
      value = value.replace(
        /(realm\s*=\s*")([^"]*)"/gi,
        (_, lead, realm) => `${lead}${rebase(realm)}"`,
      );
    }
    if (lower === 'content-length' && fault !== undefined && 'truncateAfterBytes' in fault) {
      value = String(Math.min(Number(value), fault.truncateAfterBytes));
    }
    out.push(name, value);
  }
  return out;
}

/** Streams `answer`'s body into `res` with backpressure, applying `fault` on the way. */
function relayBody(
  answer: http.IncomingMessage,
  res: http.ServerResponse,
  fault: BodyFault | undefined,
): void {
  const limit =
    fault === undefined || 'flipByteAt' in fault
      ? Number.POSITIVE_INFINITY
      : 'truncateAfterBytes' in fault
        ? fault.truncateAfterBytes
        : 'stallAfterBytes' in fault
          ? fault.stallAfterBytes
          : fault.resetAfterBytes;
  let offset = 0;
  let isCut = false;
  const cut = (last: Buffer): void => {
    isCut = true;
    answer.destroy();
    if (fault !== undefined && 'truncateAfterBytes' in fault) res.end(last);
    else if (fault !== undefined && 'stallAfterBytes' in fault) res.write(last);
    else res.write(last, () => res.destroy());
  };
  const send = (chunk: Buffer): void => {
    if (!res.write(chunk)) answer.pause();
  };

  res.on('drain', () => answer.resume());
  answer.on('close', () => {
    if (!answer.complete && !isCut) res.destroy();
  });
  answer.on('end', () => {
    if (!res.writableEnded) res.end();
  });
  if (limit === 0) cut(Buffer.alloc(0));
  answer.on('data', (chunk: Buffer) => {
    const start = offset;
    offset += chunk.length;
    if (fault !== undefined && 'flipByteAt' in fault) {
      send(flipByte(chunk, fault.flipByteAt - start));
    } else if (isCut) {
      // A chunk read before the destroy took effect.
    } else if (offset < limit) {
      send(chunk);
    } else {
      cut(chunk.subarray(0, limit - start));
    }
  });
}

/** `chunk` with the byte at `index` XOR-ed with 0xff, or unchanged when `index` is outside it. */
function flipByte(chunk: Buffer, index: number): Buffer {
  if (index < 0 || index >= chunk.length) return chunk;
  const copy = Buffer.from(chunk);
  copy[index] = (copy[index] as number) ^ 0xff;
  return copy;
}

/** Splits the CDN ticket off a request URL, keeping the other query parameters in order. */
function takeTicket(url: string): { path: string; ticket?: string } {
  const q = url.indexOf('?');
  if (q === -1) return { path: url };
  const params = url.slice(q + 1).split('&');
  const prefix = `${TICKET_PARAM}=`;
  const found = params.find((p) => p.startsWith(prefix));
  const rest = params.filter((p) => p !== found);
  return {
    path: rest.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${rest.join('&')}`,
    ticket: found?.slice(prefix.length),
  };
}
