import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';
import { CacheServiceClient } from '../../src/service/client.ts';
import {
  type CacheServer,
  type CacheServerOptions,
  openServiceDatabase,
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

export async function stopSharedPostgres(): Promise<void> {
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

/**
 * A service on a fresh data directory (and a fresh database on the shared PostgreSQL, unless
 * `options.database` names one: another instance's).
 */
export async function startService(
  t: ExecutionContext,
  backend: Backend,
  options: Partial<CacheServerOptions> = {},
): Promise<
  | {
      server: CacheServer;
      dataDir: string;
      /** The PostgreSQL database's URL (backend `postgres`). */
      database?: string;
      client: (token?: string) => CacheServiceClient;
    }
  | undefined
> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-svc-'));
  let database = options.database;
  if (database) {
    // another instance's database
  } else if (backend === 'postgres') {
    const pg = await sharedPostgres();
    if (typeof pg === 'string') {
      t.log(`skipped on PostgreSQL: ${pg}`);
      t.pass();
      return undefined;
    }
    const name = `svc_${process.pid}_${databases++}`;
    const { default: pgModule } = await import('pg');
    const admin = new pgModule.Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    database = pg.url.replace(/\/postgres$/, `/${name}`);
  } else await copyPgliteTemplate(join(dataDir, 'db'));
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
    database,
    client: (token = TOKENS.a) => new CacheServiceClient({ url: server.url, token }),
  };
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
