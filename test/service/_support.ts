import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';
import { CacheServiceClient } from '../../src/service/client.ts';
import {
  type CacheServer,
  type CacheServerOptions,
  openServiceDatabase,
  type RequestLogLine,
  startCacheServer,
} from '../../src/service/server.ts';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { oncePerRun } from '../helpers/run-dir.ts';

const run = promisify(execFile);

export const TOKENS = {
  a: 'token-namespace-a-rw-0123456789',
  aRo: 'token-namespace-a-ro-0123456789',
  b: 'token-namespace-b-rw-0123456789',
};
export const TOKEN_FILE = `a rw ${TOKENS.a}\na ro ${TOKENS.aRo}\nb rw ${TOKENS.b}\n`;

/** Which databases the service tests run on. */
export type Backend = 'pglite' | 'postgres';

let postgres: Promise<TestPostgres | string> | undefined;

/** One PostgreSQL for the whole test file; a string saying why when none can be had. */
export function sharedPostgres(): Promise<TestPostgres | string> {
  postgres ??= (async () => {
    const why = await postgresUnavailable();
    return why ?? (await startPostgres());
  })();
  return postgres;
}

async function stopSharedPostgres(): Promise<void> {
  const pg = await postgres;
  if (pg && typeof pg !== 'string') await pg.stop();
}

let databases = 0;

/**
 * A migrated, closed PGlite database directory (a service data directory's `db`), made once per
 * test run: creating one costs seconds of CPU (tens on a busy machine), copying it very little.
 */
function pgliteTemplate(): Promise<string> {
  return oncePerRun('pglite-template', async (dir) => {
    const db = await openServiceDatabase(dir);
    await db.close();
    // PGlite zeroes its shared memory at each open: the tests' databases are small, and 16 MB of
    // shared buffers instead of initdb's 128 MB make an open 0.1 s of CPU cheaper.
    await appendFile(join(dir, 'db', 'postgresql.conf'), '\nshared_buffers = 16MB\n');
  }).then((dir) => join(dir, 'db'));
}

/**
 * Copy the run's PGlite template to `db` (which must not exist), as a service data directory's
 * `db`. With `cp -a`: Node's recursive copy of its thousand files costs ten times the CPU.
 */
export async function copyPgliteTemplate(db: string): Promise<void> {
  await run('cp', ['-a', await pgliteTemplate(), db]);
}

/** The namespaces a test uses, and their tokens. */
export interface TestNamespaces {
  /** Namespace `a`, and `b` beside it. */
  readonly ns: { readonly a: string; readonly b: string };
  /** Read-write tokens of `a` and `b`, and a read-only one of `a`. */
  readonly tokens: { readonly a: string; readonly aRo: string; readonly b: string };
}

/** A running service as a test uses it. */
export interface TestService extends TestNamespaces {
  readonly server: CacheServer;
  readonly dataDir: string;
  /** The token file the service reads (another instance may read it too). */
  readonly tokensFile: string;
  /** The PostgreSQL database's URL (backend `postgres`). */
  readonly database?: string;
  /** A client with `token`, by default `tokens.a`. */
  client(token?: string): CacheServiceClient;
}

/** What a service needs on `backend`, in `dataDir`; why not, when there is no PostgreSQL. */
async function prepareDatabase(
  backend: Backend,
  dataDir: string,
): Promise<{ database?: string } | { skip: string }> {
  if (backend === 'pglite') {
    await copyPgliteTemplate(join(dataDir, 'db'));
    return {};
  }
  const pg = await sharedPostgres();
  if (typeof pg === 'string') return { skip: pg };
  const name = `svc_${process.pid}_${databases++}`;
  const { default: pgModule } = await import('pg');
  const admin = new pgModule.Client({ connectionString: pg.url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  return { database: pg.url.replace(/\/postgres$/, `/${name}`) };
}

function skipped(t: ExecutionContext, why: string): undefined {
  t.log(`skipped on PostgreSQL: ${why}`);
  t.pass();
  return undefined;
}

/**
 * A service of the test's own on a fresh data directory (and a fresh database on the shared
 * PostgreSQL, unless `options.database` names one: another instance's), with namespaces `a` and
 * `b` ({@link TOKENS}). For tests that need the whole service: its options, its retention over
 * every namespace, its store, its restart; the others take {@link sharedService}.
 */
export async function startService(
  t: ExecutionContext,
  backend: Backend,
  options: Partial<CacheServerOptions> = {},
): Promise<TestService | undefined> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-svc-'));
  let database = options.database;
  if (database === undefined) {
    const prepared = await prepareDatabase(backend, dataDir);
    if ('skip' in prepared) return skipped(t, prepared.skip);
    database = prepared.database;
  }
  const tokensFile = join(dataDir, 'tokens');
  await writeFile(tokensFile, TOKEN_FILE);
  const server = await startCacheServer({
    listen: '127.0.0.1:0',
    dataDir,
    tokensFile,
    ...options,
    database,
  });
  t.teardown(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return {
    server,
    dataDir,
    tokensFile,
    database,
    ns: { a: 'a', b: 'b' },
    tokens: TOKENS,
    client: (token = TOKENS.a) => new CacheServiceClient({ url: server.url, token }),
  };
}

/** Options of a shared service: plain values, which name it. */
export interface SharedServiceOptions {
  readonly maxBlobSize?: number;
}

/** A service shared by the tests of a file, and its request log. */
interface Shared {
  readonly server: CacheServer;
  readonly dataDir: string;
  readonly tokensFile: string;
  readonly database?: string;
  readonly log: RequestLogLine[];
  /** Give namespaces to a test: tokens added to the file, and the service reloads it. */
  namespaces(): Promise<TestNamespaces>;
}

const shared = new Map<string, Promise<Shared | { skip: string }>>();
let namespaceCount = 0;

async function startShared(
  backend: Backend,
  options: SharedServiceOptions,
): Promise<Shared | { skip: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-svc-shared-'));
  const prepared = await prepareDatabase(backend, dataDir);
  if ('skip' in prepared) return prepared;
  const tokensFile = join(dataDir, 'tokens');
  const lines: string[] = [];
  await writeFile(tokensFile, '');
  const log: RequestLogLine[] = [];
  const server = await startCacheServer({
    listen: '127.0.0.1:0',
    dataDir,
    tokensFile,
    database: prepared.database,
    log: (line) => log.push(line),
    retention: { intervalMs: 0 },
    ...options,
  });
  let reloaded: Promise<void> = Promise.resolve();
  return {
    server,
    dataDir,
    tokensFile,
    database: prepared.database,
    log,
    async namespaces() {
      const n = namespaceCount++;
      const ns = { a: `t${n}-a`, b: `t${n}-b` };
      const token = () => randomBytes(16).toString('hex');
      const tokens = { a: token(), aRo: token(), b: token() };
      lines.push(`${ns.a} rw ${tokens.a}`, `${ns.a} ro ${tokens.aRo}`, `${ns.b} rw ${tokens.b}`);
      // One reload at a time, each of the whole file as it is then; written aside and renamed,
      // as another instance may read it meanwhile.
      reloaded = reloaded.then(async () => {
        const aside = `${tokensFile}.${n}`;
        await writeFile(aside, `${lines.join('\n')}\n`);
        await rename(aside, tokensFile);
        await server.reloadTokens();
      });
      await reloaded;
      return { ns, tokens };
    },
  };
}

/**
 * The service of this test file on `backend` with `options` (started by the first test that asks),
 * with namespaces of the test's own: for tests that need no service of their own (see
 * {@link startService}). Its retention runs only on demand, with the default grace period, so
 * that what one test does never takes what another one uploads. `requests()` is the request log
 * of the test's namespaces. Test files that use it stop it with {@link stopShared}.
 */
export async function sharedService(
  t: ExecutionContext,
  backend: Backend,
  options: SharedServiceOptions = {},
): Promise<(TestService & { requests(): RequestLogLine[] }) | undefined> {
  const name = `${backend} ${JSON.stringify(options)}`;
  let started = shared.get(name);
  if (started === undefined) {
    started = startShared(backend, options);
    shared.set(name, started);
  }
  const svc = await started;
  if ('skip' in svc) return skipped(t, svc.skip);
  const { ns, tokens } = await svc.namespaces();
  const mine = new Set([ns.a, ns.b]);
  return {
    server: svc.server,
    dataDir: svc.dataDir,
    tokensFile: svc.tokensFile,
    database: svc.database,
    ns,
    tokens,
    client: (token = tokens.a) => new CacheServiceClient({ url: svc.server.url, token }),
    requests: () => svc.log.filter((line) => line.namespace && mine.has(line.namespace)),
  };
}

/** Stop this file's shared services, then its PostgreSQL. */
export async function stopShared(): Promise<void> {
  const services = [...shared.values()];
  shared.clear();
  for (const started of services) {
    const svc = await started.catch(() => undefined);
    if (svc && !('skip' in svc)) {
      await svc.server.close();
      await rm(svc.dataDir, { recursive: true, force: true });
    }
  }
  await stopSharedPostgres();
}

/** A random blob with its descriptor. */
export function blob(size = 1024): { bytes: Buffer; digest: string; size: number } {
  const bytes = randomBytes(size);
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size };
}

/** The layer a step makes: the same bytes in every engine, as a reproducible build gives. */
export function stepLayer(
  step: string,
  size: number,
): { bytes: Buffer; digest: string; size: number } {
  const seed = createHash('sha512').update(step).digest();
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i += seed.length) seed.copy(bytes, i);
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size };
}

export function key(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** An engine's export of a build: a chain of steps, each with one new layer. */
export async function exportBuild(
  client: CacheServiceClient,
  steps: readonly string[],
  layerSize = 256,
): Promise<{ keys: string[]; layers: ReturnType<typeof blob>[] }> {
  const keys = steps.map(key);
  const layers = steps.map((step) => stepLayer(step, layerSize));
  const wanted = await client.updateCacheRecords({
    records: keys.map((digest, i) => ({ digest, results: [{ id: `ref-${steps[i]}` }] })),
    links: keys.slice(1).map((target, i) => ({ source: keys[i] as string, target, input: 0 })),
  });
  const results = [];
  for (const { digest } of wanted) {
    const i = keys.indexOf(digest);
    const chain = layers.slice(0, i + 1);
    for (const layer of chain) await client.uploadLayer(layer, () => layer.bytes);
    results.push({
      recordDigest: digest,
      layers: chain.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: l.digest,
        size: l.size,
      })),
    });
  }
  if (results.length > 0) await client.updateCacheLayers({ results });
  return { keys, layers };
}
