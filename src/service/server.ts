import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { type ServiceBlobStore, StoreBlobStore } from './blob-store.ts';
import { createServiceMetrics, type ServiceMetrics } from './metrics.ts';
import { PgliteDatabase } from './pglite-database.ts';
import { PostgresDatabase } from './postgres-database.ts';
import type { RetentionLimits } from './retention.ts';
import { migrate } from './schema.ts';
import { CacheService, type RequestFacts } from './service.ts';
import type { SqlDatabase } from './sql.ts';
import { TokenTable } from './tokens.ts';
import { type SigningKey, UrlSigner } from './url-signer.ts';

/** One line of the request log. */
export interface RequestLogLine {
  readonly time: string;
  readonly method: string;
  /** Path without the query (minted URLs carry their signature there). */
  readonly path: string;
  readonly status: number;
  readonly ms: number;
  readonly namespace?: string;
  readonly bytes?: number;
  readonly code?: string;
}

/** Options of {@link startCacheServer}. */
export interface CacheServerOptions {
  /** `HOST:PORT`, `:PORT` or `PORT`; default `127.0.0.1:7450`; port 0 picks a free one. */
  listen?: string;
  /** Directory of the embedded database, the default blob layout and the default token. */
  dataDir: string;
  /** `postgres://...`: a PostgreSQL server instead of the embedded database. */
  database?: string;
  /** Blob store; default an OCI layout at `DATA/blobs`. */
  blobs?: ServiceBlobStore;
  /** Token file (`NAMESPACE rw|ro TOKEN` per line); default one rw token for `default` in `DATA/token`. */
  tokensFile?: string;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: string; key: string };
  /** URL signing keys (the first signs); default one random key per start. */
  keys?: readonly SigningKey[];
  /** Minted URLs' lifetime; default 300 s. */
  urlTtlSeconds?: number;
  maxBlobSize?: number;
  /** Base of minted URLs, when clients reach the service by another name than they call it. */
  publicUrl?: string;
  /** One JSON log line per request; default none. */
  log?: (line: RequestLogLine) => void;
  /**
   * The namespaces' retention (see {@link CacheRetention}): `limits` (those of `ociferry cache
   * prune`) applied to every namespace every `intervalMs` (default 1 hour; 0 runs it only on
   * demand), with unreferenced blobs collected; `graceMs` (default 1 hour) keeps what was used
   * lately whatever the limits.
   */
  retention?: { limits?: RetentionLimits; intervalMs?: number; graceMs?: number };
  /** Told of each retention run, as one JSON-able object; default none. */
  event?: (event: RetentionEvent) => void;
  /** Told notable events (the default token's path). */
  notice?: (message: string) => void;
}

/** One retention run, for the log. */
export interface RetentionEvent {
  readonly time: string;
  readonly event: 'retention' | 'retention failed';
  readonly ms: number;
  readonly namespaces?: number;
  readonly resultsDropped?: number;
  readonly recordsDropped?: number;
  readonly blobsReleased?: number;
  readonly blobsDeleted?: number;
  readonly bytesFreed?: number;
  readonly message?: string;
}

/** How often `ociferry cache serve` applies the retention by default: hourly. */
export const DEFAULT_RETENTION_INTERVAL_MS = 60 * 60 * 1000;

/** A running cache service. */
export interface CacheServer {
  /** `http://HOST:PORT` (or https). */
  readonly url: string;
  readonly service: CacheService;
  /** The database the service keeps its records in. */
  readonly db: SqlDatabase;
  readonly signer: UrlSigner;
  readonly metrics: ServiceMetrics;
  /** Re-read the token file (what SIGHUP does); no-op without one. */
  reloadTokens(): Promise<void>;
  /** Apply the retention now, as the periodic runs do (one at a time: a run in flight is joined). */
  runRetention(): Promise<void>;
  /** Stop accepting, let requests in flight finish, close the database. */
  close(): Promise<void>;
}

/** The database `database` names, or the embedded one in `DATA/db`; tables created. */
export async function openServiceDatabase(
  dataDir: string,
  database?: string,
): Promise<SqlDatabase> {
  const db = database
    ? await PostgresDatabase.open(database)
    : await PgliteDatabase.open(join(dataDir, 'db'));
  try {
    await migrate(db);
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  return db;
}

/** Start `ociferry cache serve`'s server (docs/cache-service.md). */
export async function startCacheServer(options: CacheServerOptions): Promise<CacheServer> {
  await mkdir(options.dataDir, { recursive: true });
  const tokens = options.tokensFile
    ? await TokenTable.load(options.tokensFile)
    : await defaultTokens(options.dataDir, options.notice);
  const blobs =
    options.blobs ?? (await StoreBlobStore.open(`oci:${join(options.dataDir, 'blobs')}`));
  const db = await openServiceDatabase(options.dataDir, options.database);
  const metrics = createServiceMetrics();
  const signer = new UrlSigner({ keys: options.keys, ttlSeconds: options.urlTtlSeconds });
  const service = new CacheService({
    db,
    blobs,
    tokens,
    signer,
    metrics,
    maxBlobSize: options.maxBlobSize,
    publicUrl: options.publicUrl,
    retention: { limits: options.retention?.limits, graceMs: options.retention?.graceMs },
  });
  let closing = false;
  let retentionRun: Promise<void> | undefined;
  const runRetention = (): Promise<void> => {
    retentionRun ??= (async () => {
      const started = performance.now();
      const ms = () => Math.round(performance.now() - started);
      try {
        const { namespaces, store } = await service.runRetention();
        const sum = (of: (ns: (typeof namespaces)[number]) => number) =>
          namespaces.reduce((total, ns) => total + of(ns), 0);
        options.event?.({
          time: new Date().toISOString(),
          event: 'retention',
          ms: ms(),
          namespaces: namespaces.length,
          resultsDropped: sum((ns) => ns.dropped.results),
          recordsDropped: sum((ns) => ns.dropped.records),
          blobsReleased: sum((ns) => ns.released.blobs),
          blobsDeleted: store.deleted,
          bytesFreed: store.bytesFreed,
        });
      } catch (error) {
        options.event?.({
          time: new Date().toISOString(),
          event: 'retention failed',
          ms: ms(),
          message: (error as Error).message,
        });
      } finally {
        retentionRun = undefined;
      }
    })();
    return retentionRun;
  };
  const interval = options.retention?.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    if (closing || !(interval > 0)) return;
    timer = setTimeout(() => void runRetention().then(schedule), interval);
    timer.unref();
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = path.startsWith('/v1/blobs/') ? '/v1/blobs' : path;
    const facts: RequestFacts = {};
    res.once('close', () => {
      const ms = performance.now() - started;
      metrics.requests.inc({ route, status: String(res.statusCode) });
      metrics.duration.observe({ route }, ms / 1000);
      options.log?.({
        time: new Date().toISOString(),
        method: req.method ?? '',
        path,
        status: res.statusCode,
        ms: Math.round(ms * 10) / 10,
        ...facts,
      });
    });
    if (closing) res.setHeader('connection', 'close');
    if (path === '/metrics' && req.method === 'GET') {
      void metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      });
      return;
    }
    void service.handle(req, res, facts);
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
    : createHttpServer(onRequest);
  server.requestTimeout = 0; // uploads of large blobs may take long
  // Connections that have carried no request yet (a client's or a load balancer's, opened ahead):
  // Node's closeIdleConnections leaves them open, and close would wait for them a minute or more.
  const unused = new Set<Socket>();
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  server.on('request', (req: IncomingMessage) => unused.delete(req.socket));
  // Idle keep-alive connections stay open longer than clients' (undici's default is 4 s): a client
  // that reuses one just as the server closes it gets ECONNRESET, seen on busy machines.
  server.keepAliveTimeout = 65_000;
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:7450');
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  schedule();
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${options.tls ? 'https' : 'http'}://${shownHost}:${address.port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    service,
    db,
    signer,
    metrics,
    async reloadTokens() {
      if (options.tokensFile) tokens.replace(await TokenTable.load(options.tokensFile));
    },
    runRetention,
    close() {
      closed ??= (async () => {
        closing = true;
        clearTimeout(timer);
        // A connection busy now goes idle once its response is sent, after the idle ones were
        // closed: it must then close at once, not after keepAliveTimeout (65 s) that server.close
        // would wait out.
        server.keepAliveTimeout = 1;
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        for (const socket of unused) socket.destroy();
        await done;
        await retentionRun;
        await db.close();
      })();
      return closed;
    },
  };
}

/** `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT`. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d{1,5})$/.exec(listen.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new RangeError(`--listen wants HOST:PORT, :PORT or PORT, got ${JSON.stringify(listen)}`);
  }
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port };
}

/** The token in `DATA/token` (made with mode 0600 when missing): rw on namespace `default`. */
async function defaultTokens(
  dataDir: string,
  notice?: (message: string) => void,
): Promise<TokenTable> {
  const path = join(dataDir, 'token');
  let token: string;
  try {
    token = (await readFile(path, 'utf8')).trim();
  } catch {
    token = randomBytes(32).toString('base64url');
    await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' }).catch(async () => {
      token = (await readFile(path, 'utf8')).trim();
    });
  }
  await chmod(path, 0o600);
  notice?.(`a read-write token for namespace "default" is in ${path}`);
  return new TokenTable([{ namespace: 'default', access: 'rw', token }]);
}
