import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { CACHE_CONFIG_MEDIA_TYPE } from '../cache/config.ts';
import { OciferryError } from '../errors.ts';
import {
  DOCKER_LAYER,
  DOCKER_LAYER_GZIP,
  decodeJson,
  OCI_LAYER,
  OCI_LAYER_GZIP,
  OCI_LAYER_ZSTD,
} from '../oci/index.ts';
import {
  checkDigest,
  type PruneResponse,
  parseBlobUrlRequest,
  parseMountUrlRequest,
  parsePruneRequest,
  parseUpdateLayers,
  parseUpdateRecords,
  type ServiceConfig,
} from './api.ts';
import { BlobPresence } from './blob-presence.ts';
import type { ServiceBlobStore } from './blob-store.ts';
import { CacheServiceError } from './errors.ts';
import type { ServiceMetrics } from './metrics.ts';
import { CacheRecords } from './records.ts';
import {
  CacheRetention,
  type NamespacePruneResult,
  type RetentionLimits,
  type RetentionRunResult,
  type StoreCollectionResult,
} from './retention.ts';
import { sendFile } from './send-file.ts';
import type { SqlDatabase } from './sql.ts';
import type { Principal, TokenTable } from './tokens.ts';
import type { UrlOperation, UrlSigner } from './url-signer.ts';

/** Layer media types the service accepts (BuildKit's layer types). */
export const LAYER_MEDIA_TYPES = [
  OCI_LAYER,
  OCI_LAYER_GZIP,
  OCI_LAYER_ZSTD,
  DOCKER_LAYER_GZIP,
  DOCKER_LAYER,
];

/** Default blob size limit: 10 GiB. */
export const DEFAULT_MAX_BLOB_SIZE = 10 * 1024 ** 3;
/**
 * How long the service believes a blob it saw in the store is still there: a registry behind
 * `--blobs` may lose blobs to its own garbage collection.
 */
export const STORE_PRESENCE_TTL_MS = 60_000;
/** Limit of a JSON request body: 16 MiB (the cache config cap). */
export const MAX_JSON_BODY = 16 * 1024 * 1024;

/** Options of {@link CacheService}. */
export interface CacheServiceOptions {
  readonly db: SqlDatabase;
  readonly blobs: ServiceBlobStore;
  readonly tokens: TokenTable;
  readonly signer: UrlSigner;
  readonly metrics?: ServiceMetrics;
  /** Default {@link DEFAULT_MAX_BLOB_SIZE}. */
  readonly maxBlobSize?: number;
  /** Base URL of minted URLs; default the scheme and `Host` of the request that asks. */
  readonly publicUrl?: string;
  /** The namespaces' retention: limits applied by each run, and the grace period (see {@link CacheRetention}). */
  readonly retention?: { readonly limits?: RetentionLimits; readonly graceMs?: number };
}

/** What one request did, for the log line (never a token or a signature). */
export interface RequestFacts {
  namespace?: string;
  bytes?: number;
  code?: string;
}

/**
 * The cache service's request handling (docs/cache-service.md): routes, auth, JSON methods over
 * {@link CacheRecords}, and blob transfers over minted URLs. Owns no socket: see
 * {@link startCacheServer}.
 */
export class CacheService {
  readonly records: CacheRecords;
  readonly retention: CacheRetention;
  readonly #options: CacheServiceOptions;
  readonly #maxBlobSize: number;
  /** Blobs seen in the store, by digest. */
  readonly #stored = new BlobPresence({ ttlMs: STORE_PRESENCE_TTL_MS });

  constructor(options: CacheServiceOptions) {
    this.#options = options;
    const graceMs = options.retention?.graceMs;
    this.records = new CacheRecords(options.db, { graceMs });
    this.retention = new CacheRetention({
      db: options.db,
      records: this.records,
      blobs: options.blobs,
      limits: options.retention?.limits,
      graceMs,
      onDeleted: (digest) => this.#stored.delete(digest),
    });
    this.#maxBlobSize = options.maxBlobSize ?? DEFAULT_MAX_BLOB_SIZE;
  }

  /** Answer one request; never throws (errors become coded JSON answers). */
  async handle(req: IncomingMessage, res: ServerResponse, facts: RequestFacts): Promise<void> {
    try {
      await this.#route(req, res, facts);
    } catch (error) {
      const coded = asServiceError(error);
      facts.code = coded.code;
      if (coded.code === 'INTERNAL') facts.code = `INTERNAL: ${(error as Error)?.message}`;
      if (!res.headersSent) sendError(res, coded);
      else res.destroy();
      req.resume();
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse, facts: RequestFacts): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://service');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz') {
      allow(method, ['GET', 'HEAD']);
      await this.#options.db.query('select 1');
      return sendText(res, 200, 'ok\n');
    }
    if (path.startsWith('/v1/blobs/')) {
      const digest = checkDigest(decodeURIComponent(path.slice('/v1/blobs/'.length)));
      return this.#blob(req, res, digest, url.searchParams, facts);
    }
    const route = ROUTES[path];
    if (!route) throw new CacheServiceError('NOT_FOUND', `no such path: ${path}`);
    allow(method, [route.method]);
    const principal = this.#authenticate(req);
    facts.namespace = principal.namespace;
    if (route.write && principal.access !== 'rw') {
      throw new CacheServiceError('DENIED', 'this token is read-only');
    }
    const body = route.method === 'POST' ? await readJson(req) : undefined;
    const ns = principal.namespace;
    const records = this.records;
    switch (path) {
      case '/v1/config': {
        const config: ServiceConfig = {
          namespace: ns,
          maxBlobSize: this.#maxBlobSize,
          urlTtlSeconds: this.#options.signer.ttlSeconds,
          mediaTypes: LAYER_MEDIA_TYPES,
          access: principal.access,
        };
        return sendJson(res, 200, config);
      }
      case '/v1/records': {
        const exportRecords = await records.updateRecords(ns, parseUpdateRecords(body), {
          notBefore: this.retention.notBefore(),
        });
        return sendJson(res, 200, { exportRecords });
      }
      case '/v1/layers': {
        const added = await records.updateLayers(ns, parseUpdateLayers(body));
        return sendJson(res, 200, { results: added });
      }
      case '/v1/import': {
        const bytes = await records.importCache(ns);
        facts.bytes = bytes.length;
        res.writeHead(200, {
          'content-type': CACHE_CONFIG_MEDIA_TYPE,
          'content-length': bytes.length,
        });
        res.end(bytes);
        return;
      }
      case '/v1/layer-upload-url': {
        const { digest, size } = parseBlobUrlRequest(body);
        this.#checkSize(digest, size);
        const exists = (await records.blob(ns, digest)) !== undefined;
        return sendJson(res, 200, { ...this.#mint(req, 'put', ns, digest), method: 'PUT', exists });
      }
      case '/v1/layer-download-url': {
        const { digest } = parseBlobUrlRequest(body);
        const blob = await this.#servable(ns, digest);
        const minted = this.#mint(req, 'get', ns, digest);
        return sendJson(res, 200, { ...minted, method: 'GET', size: blob.size });
      }
      case '/v1/cache-mounts': {
        const mounts = [];
        for (const mount of await records.mounts(ns)) {
          if ((await this.#storedSize(mount.digest)) === undefined) continue;
          mounts.push({ ...mount, ...this.#mint(req, 'get', ns, mount.digest) });
        }
        return sendJson(res, 200, { mounts });
      }
      case '/v1/prune': {
        const { keepNewer, ...limits } = parsePruneRequest(body);
        const pruned = await this.retention.pruneNamespace(
          ns,
          { ...limits, ...(keepNewer === undefined ? {} : { keepNewer: keepNewer * 1000 }) },
          { refuseEmpty: true },
        );
        const store = await this.retention.collectStore();
        this.#counted([pruned], store);
        const answer: PruneResponse = {
          kept: pruned.kept,
          dropped: pruned.dropped,
          droppedForConfigSize: pruned.droppedForConfigSize,
          ...(pruned.builds ? { builds: pruned.builds } : {}),
          blobs: {
            released: pruned.released.blobs,
            releasedBytes: pruned.released.bytes,
            deleted: store.deleted,
            bytesFreed: store.bytesFreed,
          },
        };
        return sendJson(res, 200, answer);
      }
      case '/v1/cache-mount-upload-url': {
        const { name, digest, size } = parseMountUrlRequest(body);
        this.#checkSize(digest, size);
        const exists = (await records.blob(ns, digest)) !== undefined;
        const minted = this.#mint(req, 'mount', ns, digest, name);
        return sendJson(res, 200, { ...minted, method: 'PUT', exists });
      }
    }
  }

  /**
   * Apply the retention to every namespace (its limits, see {@link CacheServiceOptions.retention}),
   * then collect the store: what `ociferry cache serve` does periodically.
   */
  async runRetention(): Promise<RetentionRunResult> {
    try {
      const result = await this.retention.run();
      this.#counted(result.namespaces, result.store);
      this.#options.metrics?.retentionRuns.inc({ outcome: 'ok' });
      return result;
    } catch (error) {
      this.#options.metrics?.retentionRuns.inc({ outcome: 'failed' });
      throw error;
    }
  }

  #counted(pruned: readonly NamespacePruneResult[], store: StoreCollectionResult): void {
    const metrics = this.#options.metrics;
    if (!metrics) return;
    metrics.resultsPruned.inc(pruned.reduce((sum, ns) => sum + ns.dropped.results, 0));
    metrics.blobsDeleted.inc(store.deleted);
    metrics.blobBytesDeleted.inc(store.bytesFreed);
  }

  #checkSize(digest: string, size: number | undefined): void {
    if (size !== undefined && size > this.#maxBlobSize) {
      throw new CacheServiceError(
        'SIZE_EXCEEDED',
        `blob ${digest} has ${size} bytes, more than the service's limit of ${this.#maxBlobSize}`,
      );
    }
  }

  /** The namespace's row for `digest`, provided the store really holds the bytes. */
  async #servable(ns: string, digest: string): Promise<{ size: number }> {
    const row = await this.records.blob(ns, digest);
    const size = row && (await this.#storedSize(digest));
    if (size === undefined) {
      throw new CacheServiceError('BLOB_UNKNOWN', `blob ${digest} is not in this cache`);
    }
    return { size };
  }

  /** The store's size of `digest`; undefined when it lacks the blob. */
  #storedSize(digest: string): Promise<number | undefined> {
    return this.#stored.through(digest, async () => (await this.#options.blobs.info(digest))?.size);
  }

  #mint(
    req: IncomingMessage,
    op: UrlOperation,
    ns: string,
    digest: string,
    name?: string,
  ): { url: string; expiresAt: string } {
    const { query, expiresAt } = this.#options.signer.mint({ op, ns, digest, name });
    this.#options.metrics?.urlsMinted.inc({ op });
    const base = this.#options.publicUrl ?? requestOrigin(req);
    return { url: `${base}/v1/blobs/${digest}?${query}`, expiresAt: expiresAt.toISOString() };
  }

  #authenticate(req: IncomingMessage): Principal {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const principal = match?.[1] ? this.#options.tokens.lookup(match[1]) : undefined;
    if (!principal) {
      throw new CacheServiceError('UNAUTHORIZED', 'a valid bearer token is required');
    }
    return principal;
  }

  async #blob(
    req: IncomingMessage,
    res: ServerResponse,
    digest: string,
    query: URLSearchParams,
    facts: RequestFacts,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    allow(method, ['GET', 'HEAD', 'PUT']);
    const grant = this.#options.signer.verify(digest, query);
    facts.namespace = grant.ns;
    const wanted = method === 'PUT' ? ['put', 'mount'] : ['get'];
    if (!wanted.includes(grant.op)) {
      throw new CacheServiceError('DENIED', `this URL is not for ${method} requests`);
    }
    if (method !== 'PUT') return this.#download(req, res, grant.ns, digest, facts);
    const announced = Number(req.headers['content-length'] ?? Number.NaN);
    if (!Number.isSafeInteger(announced)) {
      throw new CacheServiceError('LENGTH_REQUIRED', 'an upload needs a Content-Length header');
    }
    if (announced > this.#maxBlobSize) {
      throw new CacheServiceError(
        'SIZE_EXCEEDED',
        `the body has ${announced} bytes, more than the service's limit of ${this.#maxBlobSize}`,
      );
    }
    // The store keeps what an upload brings for the grace period, held by no namespace yet.
    const started = Date.now();
    await this.retention.noteUpload(digest);
    const size = await this.#options.blobs.write(digest, announced, req, { limit: announced });
    if (Date.now() - started > this.retention.graceMs / 2) {
      // A long upload: the blob must be there still, and stay until its row is made below.
      await this.retention.noteUpload(digest);
      if ((await this.#options.blobs.info(digest)) === undefined) {
        throw new CacheServiceError(
          'UNAVAILABLE',
          `blob ${digest} was collected while it uploaded; upload it again`,
        );
      }
    }
    this.#stored.add(digest, size);
    await this.records.addBlob(grant.ns, { digest, size });
    if (grant.op === 'mount' && grant.name) {
      await this.records.setMount(grant.ns, { name: grant.name, digest, size });
    }
    facts.bytes = size;
    this.#options.metrics?.bytesIn.inc(size);
    sendJson(res, 201, { digest, size });
  }

  async #download(
    req: IncomingMessage,
    res: ServerResponse,
    ns: string,
    digest: string,
    facts: RequestFacts,
  ): Promise<void> {
    const { size } = await this.#servable(ns, digest);
    const range = parseRange(req.headers.range, size);
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      'docker-content-digest': digest,
    };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': size });
      res.end();
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const length = size === 0 ? 0 : end - start + 1;
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, { ...headers, 'content-length': length });
    facts.bytes = length;
    if (length === 0) {
      res.end();
      return;
    }
    const file = await this.#options.blobs.open?.(digest);
    if (file) {
      try {
        await sendFile(file, res, start, end);
      } finally {
        await file.close();
      }
    } else await pipeline(await this.#options.blobs.read(digest, size, { start, end }), res);
    this.#options.metrics?.bytesOut.inc(length);
  }
}

const ROUTES: Record<string, { method: 'GET' | 'POST'; write: boolean }> = {
  '/v1/config': { method: 'GET', write: false },
  '/v1/records': { method: 'POST', write: true },
  '/v1/layers': { method: 'POST', write: true },
  '/v1/import': { method: 'GET', write: false },
  '/v1/layer-upload-url': { method: 'POST', write: true },
  '/v1/layer-download-url': { method: 'POST', write: false },
  '/v1/cache-mounts': { method: 'GET', write: false },
  '/v1/cache-mount-upload-url': { method: 'POST', write: true },
  '/v1/prune': { method: 'POST', write: true },
};

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) {
    throw new CacheServiceError('METHOD_NOT_ALLOWED', `use ${methods.join(' or ')} here`);
  }
}

function requestOrigin(req: IncomingMessage): string {
  const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
  return `${tls ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`;
}

/** A single `bytes=A-B`, `bytes=A-` or `bytes=-N` range; undefined for none. */
function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  let start: number;
  let end: number;
  if (match && match[1] !== '') {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  } else if (match && match[2] !== '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number.NaN;
    end = Number.NaN;
  }
  if (!(start <= end && start < size)) {
    throw new CacheServiceError(
      'RANGE_NOT_SATISFIABLE',
      `range ${header} is outside the ${size} bytes`,
    );
  }
  return { start, end };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const announced = Number(req.headers['content-length'] ?? 0);
  if (announced > MAX_JSON_BODY) {
    throw new CacheServiceError(
      'SIZE_EXCEEDED',
      `request bodies are limited to ${MAX_JSON_BODY} bytes`,
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_JSON_BODY) {
      throw new CacheServiceError(
        'SIZE_EXCEEDED',
        `request bodies are limited to ${MAX_JSON_BODY} bytes`,
      );
    }
    chunks.push(chunk);
  }
  try {
    return decodeJson(Buffer.concat(chunks), 'the request body');
  } catch (error) {
    throw new CacheServiceError('BAD_REQUEST', 'the body is not valid JSON', { cause: error });
  }
}

/** Errors thrown below the handlers, as the API's coded errors. */
function asServiceError(error: unknown): CacheServiceError {
  if (error instanceof CacheServiceError) return error;
  if (error instanceof OciferryError) {
    if (error.code === 'DIGEST_MISMATCH' || error.code === 'SIZE_MISMATCH') {
      return new CacheServiceError(
        'DIGEST_MISMATCH',
        'the bytes do not match the digest; nothing was stored',
      );
    }
    if (error.code === 'SIZE_EXCEEDED')
      return new CacheServiceError('SIZE_EXCEEDED', error.message);
    if (error.code === 'BLOB_UNKNOWN') return new CacheServiceError('BLOB_UNKNOWN', error.message);
  }
  return new CacheServiceError('INTERNAL', 'internal error; see the service log');
}

function sendError(res: ServerResponse, error: CacheServiceError): void {
  sendJson(res, error.status, { errors: [{ code: error.code, message: error.message }] });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length });
  res.end(bytes);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}
