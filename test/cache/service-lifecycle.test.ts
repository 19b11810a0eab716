import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import {
  CacheImportCache,
  checkCache,
  mergeCaches,
  openCacheSource,
  pruneCache,
} from '../../src/cache/index.ts';
import { BlobLocations } from '../../src/remote/blob-locations.ts';
import type { RequestLogLine } from '../../src/service/server.ts';
import { ociferry } from '../cli/support/cli.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { exportBuild, key, startService, TOKENS } from '../service/_support.ts';
import { cacheKeys, client } from './_support.ts';

const registryRef = (registry: TestRegistry, repo: string) =>
  `type=registry,ref=${registry.host}/${repo}:latest`;

let variables = 0;

/**
 * A service in-process (no periodic retention, no grace period), its request log, and
 * `--from`/`--to` values for namespaces `a` and `b`, their tokens in variables of this process.
 */
async function service(t: ExecutionContext) {
  const log: RequestLogLine[] = [];
  const started = await startService(t, 'pglite', {
    log: (line) => log.push(line),
    retention: { intervalMs: 0, graceMs: 0 },
  });
  if (!started) throw new Error('no service');
  const csv = (token: string) => {
    const variable = `OCIFERRY_TEST_TOKEN_${process.pid}_${variables++}`;
    process.env[variable] = token;
    t.teardown(() => {
      delete process.env[variable];
    });
    return `type=service,url=${started.server.url},token-env=${variable}`;
  };
  /** Requests of one kind since the log had `since` lines. */
  const count = (path: RegExp, since = 0) =>
    log.slice(since).filter((line) => path.test(line.path)).length;
  return { ...started, log, a: csv(TOKENS.a), b: csv(TOKENS.b), count };
}

const DOWNLOAD_URL = /^\/v1\/layer-download-url$/;
const BLOB = /^\/v1\/blobs\//;

const options = (t: ExecutionContext) => {
  const c = client(t);
  return () => ({ client: c, cache: new CacheImportCache(), blobLocations: new BlobLocations() });
};

test('merge reads service namespaces and writes to a registry, and merges a registry cache into a namespace, each layer read once', async (t) => {
  const [registry, svc] = await Promise.all([startRegistry(t), service(t)]);
  const opts = options(t);
  const one = await exportBuild(svc.client(TOKENS.a), ['base', 'a1']);
  const two = await exportBuild(svc.client(TOKENS.b), ['base', 'b1']);

  const since = svc.log.length;
  const merged = await mergeCaches([svc.a, svc.b], registryRef(registry, 'merged'), opts());
  t.like(merged.merged, { recordsIn: 4, records: 3, results: 3 });
  t.like(merged.destinations[0], { status: 'exported' });
  t.is(svc.count(DOWNLOAD_URL, since), 3, 'base, a1 and b1, once each');
  t.is(svc.count(BLOB, since), 3);
  const written = await openCacheSource(registryRef(registry, 'merged'), opts());
  t.deepEqual(
    written.graph.config.records.map((r) => r.digest).sort(),
    [...new Set([...one.keys, ...two.keys])].sort(),
  );

  // A registry cache and namespace a, merged into namespace b.
  await pushFixture(registry, 'cache-manifest', 'team/cache');
  const keys = await cacheKeys();
  const into = await mergeCaches([registryRef(registry, 'team/cache'), svc.a], svc.b, opts());
  t.like(into.destinations[0], {
    status: 'exported',
    target: `type=service,url=${svc.server.url}`,
  });
  const checked = await checkCache(svc.b, [...keys.hits, ...one.keys, ...two.keys], opts());
  t.deepEqual(checked.misses, []);
});

test('prune with --to its own namespace prunes on the service, moving no blob; a registry --to beside it gets the pruned namespace', async (t) => {
  const [registry, svc] = await Promise.all([startRegistry(t), service(t)]);
  const opts = options(t);
  const engine = svc.client(TOKENS.a);
  const old = await exportBuild(engine, ['base', 'old']);
  await sleep(5);
  const fresh = await exportBuild(engine, ['base', 'new']);

  const since = svc.log.length;
  const pruned = await pruneCache(svc.a, svc.a, { ...opts(), keepLast: 1 });
  t.like(pruned, {
    kept: { records: 2, results: 2 },
    dropped: { records: 1, results: 1 },
    builds: { found: 2, kept: 1 },
  });
  t.like(pruned.services, [{ target: `type=service,url=${svc.server.url}`, blobsDeleted: 1 }]);
  t.is(svc.count(/^\/v1\/prune$/, since), 1);
  t.is(svc.count(BLOB, since), 0, 'no blob moved');
  t.is(svc.count(/^\/v1\/(records|layers)$/, since), 0, 'nothing exported to the namespace');
  const stored = (digest: string) =>
    access(join(svc.dataDir, 'blobs', 'blobs', 'sha256', digest.slice(7))).then(
      () => true,
      () => false,
    );
  t.false(await stored(old.layers[1]?.digest ?? ''));
  const namespace = await engine.importCache();
  t.deepEqual(namespace.records.map((r) => r.digest).sort(), [...fresh.keys].sort());

  // Pruned in place and copied: the registry gets what the namespace kept.
  await sleep(5);
  await exportBuild(engine, ['base', 'newest']);
  const both = await pruneCache(svc.a, [svc.a, registryRef(registry, 'pruned')], {
    ...opts(),
    keepLast: 1,
  });
  t.is(both.destinations.length, 2);
  t.like(both.destinations[1], { status: 'exported' });
  const copy = await openCacheSource(registryRef(registry, 'pruned'), opts());
  t.deepEqual(
    copy.graph.config.records.map((r) => r.digest).sort(),
    [key('base'), key('newest')].sort(),
  );
  const refused = await pruneCache(svc.a, svc.a, { ...opts(), keepNewer: 0 }).catch(
    (e: unknown) => e,
  );
  t.like(refused, { code: 'CACHE_EMPTY' });
});

test('the CLI prunes a namespace in place and merges namespaces, with --json', async (t) => {
  const [registry, svc] = await Promise.all([startRegistry(t), service(t)]);
  await exportBuild(svc.client(TOKENS.a), ['one']);
  await sleep(5);
  await exportBuild(svc.client(TOKENS.a), ['two']);
  await exportBuild(svc.client(TOKENS.b), ['three']);
  const merged = await ociferry([
    'cache',
    'merge',
    '--json',
    '--from',
    svc.a,
    '--from',
    svc.b,
    '--to',
    registryRef(registry, 'all'),
  ]);
  t.is(merged.code, 0, merged.stderr);
  t.like(JSON.parse(merged.stdout), { merged: { records: 3, results: 3 } });
  const pruned = await ociferry([
    'cache',
    'prune',
    '--json',
    '--from',
    svc.a,
    '--to',
    svc.a,
    '--keep-last',
    '1',
  ]);
  t.is(pruned.code, 0, pruned.stderr);
  t.like(JSON.parse(pruned.stdout), {
    kept: { records: 1, results: 1 },
    dropped: { records: 1, results: 1 },
    services: [{ target: `type=service,url=${svc.server.url}`, blobsDeleted: 1 }],
  });
  await sleep(5);
  await exportBuild(svc.client(TOKENS.a), ['four']);
  const text = await ociferry([
    'cache',
    'prune',
    '--from',
    svc.a,
    '--to',
    svc.a,
    '--keep-last',
    '1',
  ]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stderr, /kept 1 record, 1 result, 1 layer .*; dropped 1 record, 1 result, 1 layer/);
  t.regex(
    text.stderr,
    new RegExp(
      `type=service,url=${svc.server.url}: 1 blob let go .*, 1 blob deleted from the service's store`,
    ),
  );
  for (const run of [merged, pruned, text]) {
    t.false(`${run.stdout}${run.stderr}`.includes(TOKENS.a));
    t.false(`${run.stdout}${run.stderr}`.includes(TOKENS.b));
  }
});
