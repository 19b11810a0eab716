import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { type ServiceBlobStore, StoreBlobStore } from '../../src/service/blob-store.ts';
import type { CacheServiceClient } from '../../src/service/client.ts';
import { CacheServiceError } from '../../src/service/errors.ts';
import type { CacheServer, RetentionEvent } from '../../src/service/server.ts';
import { startRegistry } from '../helpers/registry.ts';
import {
  type Backend,
  blob,
  exportBuild,
  key,
  startService,
  stopShared,
  TOKENS,
} from './_support.ts';

test.after.always(stopShared);

const backends: Backend[] = ['pglite', 'postgres'];
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Whether the default layout store of a service in `dataDir` has the file of `digest`. */
async function stored(dataDir: string, digest: string): Promise<boolean> {
  return access(join(dataDir, 'blobs', 'blobs', 'sha256', digest.slice(7))).then(
    () => true,
    () => false,
  );
}

/**
 * Make what `ns` used (its records and blob rows), and every upload the store noted, look two
 * hours old, as if that long had passed.
 */
async function age(server: CacheServer, ns = 'a'): Promise<void> {
  const past = "touched_at = touched_at - interval '2 hours'";
  for (const table of ['cache_record_uses', 'cache_blob_uses']) {
    await server.db.query(`update ${table} set ${past} where ns = $1`, [ns]);
  }
  await server.db.query(`update cache_stored set ${past}`);
}

async function code(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (error instanceof CacheServiceError) return error.code;
    throw error;
  }
}

/** The bytes of `digest` as the namespace serves them. */
async function download(client: CacheServiceClient, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const { url } = await client.getLayerDownloadUrl(digest);
  for await (const chunk of await client.getUrl(url)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

for (const backend of backends) {
  test(`${backend}: prune --keep-last 1 keeps the newest build, drops what only the older needs, and deletes its blobs from the store`, async (t) => {
    const svc = await startService(t, backend, { retention: { graceMs: 0, intervalMs: 0 } });
    if (!svc) return;
    const client = svc.client();
    const old = await exportBuild(client, ['base', 'a1', 'a2']);
    await sleep(5); // the second build is the newer one
    const fresh = await exportBuild(client, ['base', 'b1']);
    const pruned = await client.prune({ keepLast: 1 });
    t.like(pruned, {
      kept: { records: 2, results: 2, layers: 2, bytes: 512 },
      dropped: { records: 2, results: 2, layers: 2, bytes: 512 },
      builds: { found: 2, kept: 1 },
      blobs: { released: 2, releasedBytes: 512, deleted: 2, bytesFreed: 512 },
    });
    const config = await client.importCache();
    t.deepEqual(config.records.map((r) => r.digest).sort(), [...fresh.keys].sort());
    for (const layer of old.layers.slice(1)) {
      t.false(await stored(svc.dataDir, layer.digest), 'a dropped build layer left the store');
      t.is(await code(client.getLayerDownloadUrl(layer.digest)), 'BLOB_UNKNOWN');
    }
    for (const layer of fresh.layers)
      t.deepEqual(await download(client, layer.digest), layer.bytes);
    // The next export of the old build is asked for its results again and is served whole.
    await exportBuild(client, ['base', 'a1', 'a2']);
    const again = await client.importCache();
    t.is(again.records.length, 4);
    for (const layer of old.layers) t.deepEqual(await download(client, layer.digest), layer.bytes);
  });

  test(`${backend}: an export in flight survives a prune: its records and uploaded blobs are kept for the grace period`, async (t) => {
    const svc = await startService(t, backend, { retention: { intervalMs: 0 } });
    if (!svc) return;
    const client = svc.client();
    // A record reported long ago, asked for a result again now, and a new one, both waiting.
    const stale = key('stale');
    await client.updateCacheRecords({ records: [{ digest: stale }] });
    await age(svc.server);
    const fresh = key('fresh');
    const wanted = await client.updateCacheRecords({
      records: [
        { digest: stale, results: [{ id: 'r1' }] },
        { digest: fresh, results: [{ id: 'r2' }] },
      ],
    });
    t.is(wanted.length, 2);
    const layers = [blob(300), blob(200)];
    for (const layer of layers) await client.uploadLayer(layer, layer.bytes);
    // A record no result needs and no engine was asked a result of is garbage at once.
    const untouched = key('untouched');
    await client.updateCacheRecords({ records: [{ digest: untouched }] });

    const pruned = await client.prune({ keepLast: 1 });
    t.like(pruned, {
      kept: { records: 2 },
      dropped: { records: 1 },
      blobs: { released: 0, deleted: 0 },
    });
    t.false((await client.importCache()).records.some((r) => r.digest === untouched));
    for (const layer of layers) t.true(await stored(svc.dataDir, layer.digest));
    const added = await client.updateCacheLayers({
      results: [
        {
          recordDigest: stale,
          layers: [{ mediaType: LAYER, digest: layers[0]!.digest, size: 300 }],
        },
        {
          recordDigest: fresh,
          layers: layers.map((l) => ({ mediaType: LAYER, digest: l.digest, size: l.size })),
        },
      ],
    });
    t.is(added, 2);
    for (const layer of layers) t.deepEqual(await download(client, layer.digest), layer.bytes);

    // Past the grace period, what nothing needs goes: a record whose export never came, a blob
    // never named.
    const unnamed = blob(100);
    await client.uploadLayer(unnamed, unnamed.bytes);
    const abandoned = key('abandoned');
    t.is(
      (
        await client.updateCacheRecords({
          records: [{ digest: abandoned, results: [{ id: 'x' }] }],
        })
      ).length,
      1,
    );
    t.like(await client.prune(), { dropped: { records: 0 }, blobs: { released: 0 } });
    await age(svc.server);
    const later = await client.prune();
    t.like(later, {
      kept: { records: 2, results: 2 },
      dropped: { records: 1, results: 0 },
      blobs: { released: 1, releasedBytes: 100, deleted: 1, bytesFreed: 100 },
    });
    t.false(await stored(svc.dataDir, unnamed.digest));
    t.false((await client.importCache()).records.some((r) => r.digest === abandoned));
    for (const layer of layers) t.deepEqual(await download(client, layer.digest), layer.bytes);
  });
}

/** A real layout store whose writes wait at a gate after they are done, before the service notes them. */
class GatedStore implements ServiceBlobStore {
  readonly description = 'gated layout';
  readonly #inner: StoreBlobStore;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  #reached: (() => void) | undefined;
  reached: Promise<void> | undefined;

  constructor(inner: StoreBlobStore) {
    this.#inner = inner;
  }

  /** Hold the next write once it is done; resolves `reached` when one arrives. */
  hold(): void {
    this.#gate = new Promise((open) => {
      this.#open = open;
    });
    this.reached = new Promise((reached) => {
      this.#reached = reached;
    });
  }

  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  info(digest: string) {
    return this.#inner.info(digest);
  }
  read(digest: string, size: number, range?: { start: number; end: number }): Promise<Readable> {
    return this.#inner.read(digest, size, range);
  }
  delete(digest: string) {
    return this.#inner.delete(digest);
  }
  async write(
    digest: string,
    size: number,
    body: Readable,
    options: { limit: number; signal?: AbortSignal },
  ): Promise<number> {
    const written = await this.#inner.write(digest, size, body, options);
    if (this.#gate) {
      this.#reached?.();
      await this.#gate;
    }
    return written;
  }
}

/** A service on PostgreSQL whose blob store holds a write once it is done, and clients of a and b. */
async function gatedService(t: ExecutionContext, graceMs: number) {
  const dir = await mkdtemp(join(tmpdir(), 'ociferry-gated-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const gated = new GatedStore(await StoreBlobStore.open(`oci:${dir}`));
  const svc = await startService(t, 'postgres', {
    blobs: gated,
    retention: { graceMs, intervalMs: 0 },
  });
  if (!svc) return undefined;
  // A failed assertion ends the test: the held upload must go before the service closes.
  t.teardown(() => gated.release());
  return { svc, gated, a: svc.client(TOKENS.a), b: svc.client(TOKENS.b) };
}

test('postgres: a blob collected as another namespace lets it go is not lost to an upload of it in flight', async (t) => {
  // The upload in flight is kept for the grace period from its start: long enough here that a
  // busy machine cannot stretch the steps below past it.
  const gatedSvc = await gatedService(t, 10 * 60_000);
  if (!gatedSvc) return;
  const { svc, gated, a, b } = gatedSvc;
  const layer = blob(5000);
  await b.uploadLayer(layer, layer.bytes); // b holds it, names it in nothing
  await age(svc.server, 'b');
  // a uploads the same blob: the store has it already, and the service is held before noting it.
  gated.hold();
  const upload = a.uploadLayer(layer, layer.bytes);
  upload.catch(() => {});
  await gated.reached;
  // Meanwhile b lets the blob go (unused past the grace period) and the store is collected.
  const pruned = await b.prune();
  t.like(pruned.blobs, { released: 1, deleted: 0 });
  gated.release();
  t.deepEqual(await upload, { uploaded: true });
  t.deepEqual(await download(a, layer.digest), layer.bytes);
});

test('postgres: an upload outlasting half the grace period checks the blob is still there, and it is sent again when it was collected', async (t) => {
  const graceMs = 4000;
  const gatedSvc = await gatedService(t, graceMs);
  if (!gatedSvc) return;
  const { svc, gated, a } = gatedSvc;
  const layer = blob(5000);
  await a.uploadLayer(layer, layer.bytes);
  gated.hold();
  const slow = a.uploadLayer(layer, layer.bytes);
  slow.catch(() => {});
  await gated.reached;
  await sleep(graceMs / 2 + 100);
  // The blob is collected meanwhile: a lets it go, and its upload's start is aged past the grace period.
  await age(svc.server, 'a');
  t.like((await a.prune()).blobs, { released: 1, deleted: 1 });
  t.is(await gated.info(layer.digest), undefined);
  gated.release();
  t.deepEqual(await slow, { uploaded: true });
  t.deepEqual(await download(a, layer.digest), layer.bytes);
});

test('postgres: a blob an instance says exists is kept for the engine that will name it without uploading it', async (t) => {
  const first = await startService(t, 'postgres', { retention: { intervalMs: 0 } });
  if (!first) return;
  const second = await startService(t, 'postgres', {
    database: first.database,
    blobs: await StoreBlobStore.open(`oci:${join(first.dataDir, 'blobs')}`),
    retention: { intervalMs: 0 },
  });
  if (!second) return;
  const told = blob(300);
  const unnamed = blob(200);
  for (const layer of [told, unnamed]) await first.client().uploadLayer(layer, layer.bytes);
  await age(first.server);
  // Another engine, through the other instance: the blob is there, it will not upload it.
  const engine = second.client();
  t.like(await engine.getLayerUploadUrl(told.digest, told.size), { exists: true });
  t.deepEqual(
    await engine.updateCacheRecords({ records: [{ digest: key('step'), results: [{ id: 'r' }] }] }),
    [{ digest: key('step'), cacheRefID: 'r' }],
  );
  t.like((await engine.prune()).blobs, { released: 1, releasedBytes: 200, deleted: 1 });
  const report = {
    results: [
      { recordDigest: key('step'), layers: [{ mediaType: LAYER, digest: told.digest, size: 300 }] },
    ],
  };
  t.is(await engine.updateCacheLayers(report), 1);
  t.deepEqual(await download(engine, told.digest), told.bytes);
});

test('pglite: blobs kept in a registry repository are deleted from it once no namespace holds them', async (t) => {
  const registry = await startRegistry(t);
  const blobs = await StoreBlobStore.open(`${registry.host}/cache/blobs`);
  const svc = await startService(t, 'pglite', { blobs, retention: { intervalMs: 0 } });
  if (!svc) return;
  const client = svc.client();
  const kept = await exportBuild(client, ['kept']);
  const unnamed = blob(3000);
  await client.uploadLayer(unnamed, unnamed.bytes);
  await age(svc.server);
  t.like((await client.prune()).blobs, { released: 1, deleted: 1, bytesFreed: 3000 });
  const deletes = await registry.requests({ method: 'DELETE', path: /\/blobs\/sha256:/ });
  t.deepEqual(
    deletes.map((entry) => [entry.path.split('/').pop(), entry.status]),
    [[unnamed.digest, 202]],
  );
  t.is(await blobs.info(unnamed.digest), undefined);
  t.deepEqual(await download(client, kept.layers[0]!.digest), kept.layers[0]!.bytes);
});

test('pglite: the retention runs on its interval over every namespace, with the service limits', async (t) => {
  const events: RetentionEvent[] = [];
  const waiting: { count: number; done: () => void }[] = [];
  const svc = await startService(t, 'pglite', {
    retention: { limits: { keepLast: 1 }, intervalMs: 300, graceMs: 60_000 },
    event: (event) => {
      events.push(event);
      for (const wait of waiting) if (events.length >= wait.count) wait.done();
    },
  });
  if (!svc) return;
  /** Two more runs: the second starts after this call. */
  const twoMoreRuns = () =>
    new Promise<void>((done) => waiting.push({ count: events.length + 2, done }));
  await exportBuild(svc.client(TOKENS.a), ['a-old']);
  await exportBuild(svc.client(TOKENS.b), ['b-old']);
  await sleep(5);
  await exportBuild(svc.client(TOKENS.a), ['a-new']);
  await exportBuild(svc.client(TOKENS.b), ['b-new']);
  await twoMoreRuns();
  t.false(
    events.some((event) => event.event === 'retention failed'),
    JSON.stringify(events),
  );
  for (const [token, name] of [
    [TOKENS.a, 'a'],
    [TOKENS.b, 'b'],
  ] as const) {
    // The old records stay the grace period (an engine may be exporting to them), without results.
    const config = await svc.client(token).importCache();
    t.deepEqual(
      config.records.filter((r) => r.results.length > 0).map((r) => r.digest),
      [key(`${name}-new`)],
    );
  }
  const metrics = await svc.server.metrics.registry.getSingleMetricAsString(
    'ociferry_cache_results_pruned_total',
  );
  t.regex(metrics, /ociferry_cache_results_pruned_total [1-9]/);
});

test('pglite: with a keepNewer limit, results older than it are not asked for', async (t) => {
  const svc = await startService(t, 'pglite', {
    retention: { limits: { keepNewer: 24 * 3600 * 1000 }, intervalMs: 0 },
  });
  if (!svc) return;
  const old = new Date(Date.now() - 2 * 24 * 3600 * 1000).toISOString();
  const recent = new Date(Date.now() - 3600 * 1000).toISOString();
  const wanted = await svc.client().updateCacheRecords({
    records: [
      { digest: key('old'), results: [{ id: 'r-old', createdAt: old }] },
      { digest: key('recent'), results: [{ id: 'r-recent', createdAt: recent }] },
    ],
  });
  t.deepEqual(wanted, [{ digest: key('recent'), cacheRefID: 'r-recent' }]);
});

test('pglite: prune refuses limits that keep nothing, bad limits and read-only tokens, and changes nothing', async (t) => {
  const svc = await startService(t, 'pglite', { retention: { graceMs: 0, intervalMs: 0 } });
  if (!svc) return;
  const client = svc.client();
  await exportBuild(client, ['one', 'two']);
  const before = await client.importCache();
  t.is(await code(client.prune({ keepNewer: 0 })), 'CACHE_EMPTY');
  t.is(await code(client.prune({ keepLast: 0 })), 'BAD_REQUEST');
  t.is(await code(client.prune({ maxSize: -1 })), 'BAD_REQUEST');
  t.is(await code(svc.client(TOKENS.aRo).prune()), 'DENIED');
  t.deepEqual(await client.importCache(), before);
});

test('pglite: a cache mount keeps its blob; the one it replaced is collected after the grace period', async (t) => {
  const svc = await startService(t, 'pglite', { retention: { intervalMs: 0 } });
  if (!svc) return;
  const client = svc.client();
  const first = blob(700);
  const second = blob(800);
  await client.uploadCacheMount('go-build', first, first.bytes);
  await client.uploadCacheMount('go-build', second, second.bytes);
  await svc.server.runRetention();
  t.true(await stored(svc.dataDir, first.digest), 'within the grace period');
  await age(svc.server);
  await svc.server.runRetention();
  t.false(await stored(svc.dataDir, first.digest));
  const mounts = await client.getCacheMountConfig();
  t.like(mounts, [{ name: 'go-build', digest: second.digest }]);
  const chunks: Buffer[] = [];
  for await (const chunk of await client.getUrl(mounts[0]?.url ?? '')) chunks.push(chunk as Buffer);
  t.deepEqual(Buffer.concat(chunks), second.bytes);
});

test('postgres: two instances on one database prune while engines export to both: no export fails, every result served has its blobs', async (t) => {
  const first = await startService(t, 'postgres', {
    retention: { limits: { maxSize: 2000 }, graceMs: 60_000, intervalMs: 0 },
  });
  if (!first) return;
  const second = await startService(t, 'postgres', {
    database: first.database,
    blobs: await StoreBlobStore.open(`oci:${join(first.dataDir, 'blobs')}`),
    retention: { limits: { maxSize: 2000 }, graceMs: 60_000, intervalMs: 0 },
  });
  if (!second) return;
  let exporting = true;
  const pruning = (async () => {
    let runs = 0;
    while (exporting || runs < 2) {
      await Promise.all([first.server.runRetention(), second.server.runRetention()]);
      runs++;
    }
    return runs;
  })();
  const flows = await Promise.all(
    Array.from({ length: 16 }, (_, i) =>
      exportBuild((i % 2 === 0 ? first : second).client(), ['root', `step-${i}`, `top-${i}`], 300),
    ),
  ).finally(() => {
    exporting = false;
  });
  t.true((await pruning) >= 2);
  t.is(flows.length, 16);
  const client = second.client();
  const config = await client.importCache();
  t.true(config.records.length > 0);
  const served = new Set(config.layers.map((layer) => layer.blob));
  for (const digest of served) {
    const bytes = await download(client, digest);
    t.is(bytes.length, 300);
  }
  const final = await first.server.service.retention.pruneNamespace('a', { maxSize: 2000 });
  t.true(final.kept.bytes <= 2000);
});
