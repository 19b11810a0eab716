/**
 * A forward HTTP proxy for tests, on 127.0.0.1: absolute-form requests (`GET http://host/path`) for
 * `http://` targets and `CONNECT host:port` tunnels for `https://` ones, to loopback targets only.
 * Clients never send loopback hosts to a proxy, so tests name the target with a reserved `.test`
 * host name (`registry.test:PORT`, see {@link proxiedName}), which the proxy, like any proxy that
 * resolves names for its clients, maps to 127.0.0.1. It logs every request it received, and can
 * demand `Proxy-Authorization`.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { ExecutionContext } from 'ava';

/** One request the proxy received. */
export interface ProxiedRequest {
  method: string;
  /** The absolute URL asked for, or `host:port` for a `CONNECT`. */
  target: string;
  /** The `Proxy-Authorization` header as received. */
  proxyAuthorization?: string;
  /** The answer the proxy gave itself (407, 400, 502), or undefined when it relayed the request. */
  refused?: number;
}

/** Options of {@link startForwardProxy}. */
export interface ForwardProxyOptions {
  /** Demand these credentials (`Proxy-Authorization: Basic`), answering 407 otherwise. */
  credentials?: { username: string; password: string };
}

/** A running forward proxy. */
export interface ForwardProxy {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Every request received, in arrival order. */
  readonly log: ProxiedRequest[];
  stop(): Promise<void>;
}

/** Host names the proxy resolves to 127.0.0.1: `127.0.0.1` itself and any `*.test` name. */
const LOOPBACK_TARGET = /^(?:127\.0\.0\.1|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.test)$/i;

/** `registry.test:PORT` for `127.0.0.1:PORT`: a name clients send to the proxy, which maps it back. */
export function proxiedName(host: string, name = 'registry'): string {
  return `${name}.test:${host.split(':')[1]}`;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'upgrade',
]);

/** Start a forward proxy on a free loopback port; stops when `t` ends. */
export async function startForwardProxy(
  t: ExecutionContext,
  options: ForwardProxyOptions = {},
): Promise<ForwardProxy> {
  const log: ProxiedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const expected =
    options.credentials === undefined
      ? undefined
      : `Basic ${Buffer.from(`${options.credentials.username}:${options.credentials.password}`).toString('base64')}`;
  const record = (req: http.IncomingMessage, target: string): ProxiedRequest => {
    const entry: ProxiedRequest = { method: req.method ?? '', target };
    const auth = req.headers['proxy-authorization'];
    if (auth !== undefined) entry.proxyAuthorization = auth;
    log.push(entry);
    return entry;
  };
  const allowed = (req: http.IncomingMessage) =>
    expected === undefined || req.headers['proxy-authorization'] === expected;

  const server = http.createServer((req, res) => {
    const entry = record(req, req.url ?? '');
    const refuse = (status: number, headers: Record<string, string> = {}) => {
      entry.refused = status;
      res.writeHead(status, { ...headers, 'content-length': '0' }).end();
    };
    if (!allowed(req)) return refuse(407, { 'proxy-authenticate': 'Basic realm="test proxy"' });
    const target = URL.canParse(req.url ?? '') ? new URL(req.url ?? '') : undefined;
    if (target?.protocol !== 'http:' || !LOOPBACK_TARGET.test(target.hostname)) return refuse(400);
    const headers: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i] as string;
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, req.rawHeaders[i + 1] as string);
    }
    const upstream = http.request({
      host: '127.0.0.1',
      port: target.port,
      method: req.method,
      path: `${target.pathname}${target.search}`,
      headers,
    });
    upstream.on('error', () => {
      if (res.headersSent) res.destroy();
      else refuse(502);
    });
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });

  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const entry = record(req, req.url ?? '');
    const refuse = (status: number, reason: string) => {
      entry.refused = status;
      client.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-length: 0\r\n\r\n`);
    };
    if (!allowed(req)) return refuse(407, 'Proxy Authentication Required');
    const match = /^([^:]+):(\d+)$/.exec(req.url ?? '');
    if (!match || !LOOPBACK_TARGET.test(match[1] ?? '')) return refuse(400, 'Bad Request');
    const upstream = net.connect(Number(match[2]), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return stopped;
  };
  t.teardown(stop);
  return { url: `http://127.0.0.1:${port}`, log, stop };
}
