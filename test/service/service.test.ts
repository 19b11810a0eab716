import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, truncate } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import test from 'ava';
import pg from 'pg';
import { request } from 'undici';
import { compareGoTimes } from '../../src/cache/go-time.ts';
import { StoreBlobStore } from '../../src/service/blob-store.ts';
import { CacheServiceClient } from '../../src/service/client.ts';
import { CacheServiceError } from '../../src/service/errors.ts';
import { SEND_CHUNK } from '../../src/service/send-file.ts';
import { startCacheServer } from '../../src/service/server.ts';
import { startRegistry } from '../helpers/registry.ts';
import {
  type Backend,
  blob,
  exportBuild,
  key,
  sharedService,
  startService,
  stopShared,
  TOKENS,
} from './_support.ts';

test.after.always(stopShared);

const backends: Backend[] = ['pglite', 'postgres'];

async function rejects(promise: Promise<unknown>, code: string): Promise<CacheServiceError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CacheServiceError && error.code === code) return error;
    throw error;
  }
  throw new Error(`expected ${code}, got success`);
}

for (const backend of backends) {
  test(`${backend}: two engines export to one namespace, a third imports the union and finds hits without a URL`, async (t) => {
    const svc = await sharedService(t, backend);
    if (!svc) return;
    const one = svc.client();
    const two = svc.client();
    const a = await exportBuild(one, ['base', 'a1', 'a2']);
    const b = await exportBuild(two, ['base', 'b1']);
    t.is(two.minted.upload, 2, 'engine two exports only b1 (base was exported): its chain of 2');
    const three = svc.client();
    const config = await three.importCache();
    const digests = new Set(config.records.map((r) => r.digest));
    for (const k of [...a.keys, ...b.keys]) t.true(digests.has(k));
    const b1 = config.records.find((r) => r.digest === key('b1'));
    t.is(b1?.results.length, 1);
    const top = config.layers[b1?.results[0]?.layer ?? -1];
    t.is(top?.blob, b.layers[1]?.digest);
    t.is(config.layers[top?.parent ?? -1]?.blob, a.layers[0]?.digest, 'base layer shared');
    t.deepEqual(three.minted, { upload: 0, download: 0, mountUpload: 0 });
    // Only a real read mints a URL, and the bytes come back verified.
    const layer = a.layers[2];
    if (!layer) throw new Error('no layer');
    const provider = three.provider([{ digest: layer.digest, size: layer.size }]);
    const desc = { mediaType: 'application/octet-stream', digest: layer.digest, size: layer.size };
    const chunks: Buffer[] = [];
    for await (const chunk of await provider.fetch(desc)) chunks.push(chunk as Buffer);
    t.deepEqual(Buffer.concat(chunks), layer.bytes);
    t.is(three.minted.download, 1);
  });

  test(`${backend}: 50 concurrent engine flows on one namespace lose no update`, async (t) => {
    const svc = await sharedService(t, backend);
    if (!svc) return;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => exportBuild(svc.client(), ['root', `step-${i}`], 64)),
    );
    const config = await svc.client().importCache();
    t.is(config.records.length, 51);
    for (let i = 0; i < 50; i++) {
      const record = config.records.find((r) => r.digest === key(`step-${i}`));
      t.is(record?.results.length, 1, `step-${i} has its result`);
      t.is(record?.inputs[0]?.length, 1, `step-${i} keeps its link`);
    }
  });

  test(`${backend}: ImportCache leaves out records an input group of which has no link, and those only they reach`, async (t) => {
    const svc = await sharedService(t, backend);
    if (!svc) return;
    const client = svc.client();
    // BuildKit matches a record through a link at every input: `copy` (nothing at input 0) and
    // `merge` (nothing at input 1) can never be reached, nor `after-copy` through `copy` alone.
    // `both` keeps its input, reached from `base`. BuildKit's exporter drops the same records.
    const steps = ['base', 'context', 'copy', 'merge', 'after-copy', 'both', 'run'];
    await client.updateCacheRecords({
      records: steps.map((step) => ({ digest: key(step) })),
      links: [
        { source: key('context'), target: key('copy'), input: 1, selector: 'sha256:sel' },
        { source: key('base'), target: key('merge'), input: 0 },
        { source: key('context'), target: key('merge'), input: 2 },
        { source: key('copy'), target: key('after-copy'), input: 0 },
        { source: key('copy'), target: key('both'), input: 0 },
        { source: key('base'), target: key('both'), input: 0, selector: 'sha256:b' },
        { source: key('both'), target: key('run'), input: 0 },
        { source: key('context'), target: key('run'), input: 1 },
      ],
    });
    const config = JSON.parse((await client.importCacheBytes()).toString()) as {
      records: { digest: string; inputs?: { selector?: string; link: number }[][] }[];
    };
    const index = (step: string) => config.records.findIndex((r) => r.digest === key(step));
    const inputs = (step: string) => config.records[index(step)]?.inputs;
    t.deepEqual(
      config.records.map((r) => r.digest),
      ['base', 'context', 'both', 'run'].map(key).sort(),
    );
    t.deepEqual(inputs('both'), [[{ selector: 'sha256:b', link: index('base') }]]);
    t.deepEqual(inputs('run'), [[{ link: index('both') }], [{ link: index('context') }]]);
    t.is(inputs('base'), undefined);
    // What the service serves is a config BuildKit and ociferry import.
    t.is((await client.importCache()).records.length, 4);
  });

  test(`${backend}: ImportCache after a change shows it, and a report that changes nothing keeps the generation`, async (t) => {
    const svc = await sharedService(t, backend);
    if (!svc) return;
    const client = svc.client();
    const records = svc.server.service.records;
    const { layers } = await exportBuild(client, ['base', 'one']);
    t.deepEqual(
      (await client.importCache()).records.map((r) => r.digest).sort(),
      [key('base'), key('one')].sort(),
    );
    const generation = await records.generation(svc.ns.a);
    // An engine reporting the state the namespace holds already, or uploading a blob again,
    // changes nothing.
    await exportBuild(client, ['base', 'one']);
    const layer = layers[0];
    if (!layer) throw new Error('no layer');
    await client.putUrl(
      (await client.getLayerUploadUrl(layer.digest)).url,
      layer.size,
      layer.bytes,
    );
    t.is(await records.generation(svc.ns.a), generation);
    await exportBuild(client, ['base', 'one', 'two']);
    t.true((await records.generation(svc.ns.a)) > generation);
    const config = await client.importCache();
    t.is(config.records.find((r) => r.digest === key('two'))?.results.length, 1);
    t.is(await records.generation(svc.ns.b), 0, 'another namespace is untouched');
  });

  test(`${backend}: bad calls get their coded error and change nothing`, async (t) => {
    const svc = await startService(t, backend, { maxBlobSize: 4096, urlTtlSeconds: 60 });
    if (!svc) return;
    const client = svc.client();
    await exportBuild(client, ['x']);
    const before = await client.importCache();
    const good = blob(100);
    const url = (await client.getLayerUploadUrl(good.digest, good.size)).url;

    await rejects(svc.client('no-such-token-0123456789').getConfig(), 'UNAUTHORIZED');
    await rejects(
      svc.client(TOKENS.aRo).updateCacheRecords({ records: [{ digest: key('y') }] }),
      'DENIED',
    );
    // Another namespace's token sees none of namespace a.
    const other = svc.client(TOKENS.b);
    t.is((await other.importCache()).records.length, 0);
    await rejects(other.getLayerDownloadUrl(before.layers[0]?.blob ?? ''), 'BLOB_UNKNOWN');
    // Tampered signature, another digest, another direction.
    await rejects(
      client.putUrl(
        url.replace(/sig=(.)/, (_all, first: string) => `sig=${first === 'A' ? 'B' : 'A'}`),
        good.size,
        good.bytes,
      ),
      'URL_INVALID',
    );
    const wrong = blob(100);
    await rejects(
      client.putUrl(url.replace(good.digest, wrong.digest), wrong.size, wrong.bytes),
      'URL_INVALID',
    );
    await rejects(client.getUrl(url), 'DENIED');
    // Wrong bytes for the digest; a body over the limit.
    await rejects(client.putUrl(url, wrong.size, wrong.bytes), 'DIGEST_MISMATCH');
    const big = blob(5000);
    await rejects(client.getLayerUploadUrl(big.digest, big.size), 'SIZE_EXCEEDED');
    const bigUrl = (await client.getLayerUploadUrl(big.digest)).url;
    await rejects(client.putUrl(bigUrl, big.size, big.bytes), 'SIZE_EXCEEDED');
    // Malformed JSON; a layer report of a blob never uploaded.
    const malformed = await request(`${svc.server.url}/v1/records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKENS.a}`, 'content-type': 'application/json' },
      body: '{"records": [',
    });
    t.is(malformed.statusCode, 400);
    t.is(
      ((await malformed.body.json()) as { errors: { code: string }[] }).errors[0]?.code,
      'BAD_REQUEST',
    );
    await rejects(
      client.updateCacheLayers({
        results: [
          { recordDigest: key('x'), layers: [{ mediaType: 'x', digest: good.digest, size: 100 }] },
        ],
      }),
      'BLOB_UNKNOWN',
    );
    t.deepEqual(await client.importCache(), before);
    t.is(await svc.server.service.records.blob('a', good.digest), undefined);
    t.is(await svc.server.service.records.blob('a', wrong.digest), undefined);
    const stored = await readdir(join(svc.dataDir, 'blobs', 'blobs', 'sha256'));
    t.false(stored.includes(wrong.digest.slice(7)));
    t.false(stored.includes(big.digest.slice(7)));
    // The good URL still works, and uploading again is idempotent.
    await client.putUrl(url, good.size, good.bytes);
    await client.putUrl(url, good.size, good.bytes);
    t.deepEqual(await svc.server.service.records.blob('a', good.digest), {
      digest: good.digest,
      size: 100,
    });
  });

  test(`${backend}: a newer result of a record that has one is asked for and imported beside the older one; an older or equal one is not`, async (t) => {
    const svc = await sharedService(t, backend);
    if (!svc) return;
    const client = svc.client();
    const step = key('step');
    const times = ['2024-01-01T00:00:00Z', '2024-01-02T00:00:00.5Z', '2024-01-03T00:00:00Z'];
    const [t1, t2, t3] = times as [string, string, string];
    const layer = (bytes: ReturnType<typeof blob>) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: bytes.digest,
      size: bytes.size,
    });
    const report = (results: { id: string; createdAt?: string }[]) =>
      client.updateCacheRecords({ records: [{ digest: step, results }] });
    t.deepEqual(await report([{ id: 'r1', createdAt: t1 }]), [{ digest: step, cacheRefID: 'r1' }]);
    const first = blob(100);
    await client.uploadLayer(first, first.bytes);
    t.is(
      await client.updateCacheLayers({
        results: [{ recordDigest: step, createdAt: t1, layers: [layer(first)] }],
      }),
      1,
    );
    t.deepEqual(await report([{ id: 'r1', createdAt: t1 }]), [], 'the same result');
    t.deepEqual(await report([{ id: 'r0', createdAt: '2023-12-31T23:00:00Z' }]), [], 'older');
    t.deepEqual(await report([{ id: 'rx' }]), [], 'of no known time');
    // The engine ran the step again and its output differs: BuildKit would load this one.
    t.deepEqual(
      await report([
        { id: 'r1', createdAt: t1 },
        { id: 'r2', createdAt: t2 },
      ]),
      [{ digest: step, cacheRefID: 'r2' }],
    );
    const second = blob(100);
    await client.uploadLayer(second, second.bytes);
    t.is(
      await client.updateCacheLayers({
        results: [{ recordDigest: step, createdAt: t2, layers: [layer(second)] }],
      }),
      1,
    );
    const newest = async () => {
      const config = await client.importCache();
      const results = config.records.find((r) => r.digest === step)?.results ?? [];
      const top = [...results].sort((a, b) => compareGoTimes(b.createdAt, a.createdAt))[0];
      return {
        count: results.length,
        blob: config.layers[top?.layer ?? -1]?.blob,
        at: top?.createdAt,
      };
    };
    t.deepEqual(await newest(), { count: 2, blob: second.digest, at: t2 });
    // The same output made later again: the result takes the later time, and is then not asked for.
    t.deepEqual(await report([{ id: 'r3', createdAt: t3 }]), [{ digest: step, cacheRefID: 'r3' }]);
    t.is(
      await client.updateCacheLayers({
        results: [{ recordDigest: step, createdAt: t3, layers: [layer(second)] }],
      }),
      1,
    );
    t.deepEqual(await report([{ id: 'r3', createdAt: t3 }]), []);
    t.deepEqual(await newest(), { count: 2, blob: second.digest, at: t3 });
    const error = await report([{ id: 'r4', createdAt: 'yesterday' }]).catch((e: unknown) => e);
    t.like(error, { code: 'BAD_REQUEST' });
  });
}

test('instances sharing one PostgreSQL never serve an ImportCache older than the database, whoever changed it', async (t) => {
  const svc = await sharedService(t, 'postgres');
  if (!svc?.database) return;
  const dataDir = await mkdtemp(join(tmpdir(), 'ociferry-svc-other-'));
  const other = await startCacheServer({
    listen: '127.0.0.1:0',
    dataDir,
    database: svc.database,
    tokensFile: svc.tokensFile,
  });
  t.teardown(async () => {
    await other.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const reader = new CacheServiceClient({ url: other.url, token: svc.tokens.a });
  const digests = async () => (await reader.importCache()).records.map((r) => r.digest).sort();
  await exportBuild(svc.client(), ['base', 'one']);
  t.deepEqual(await digests(), [key('base'), key('one')].sort());
  // Written through the first instance: the second one's kept document is out of date.
  await exportBuild(svc.client(), ['base', 'one', 'two']);
  t.deepEqual(await digests(), [key('base'), key('one'), key('two')].sort());
  // Written to the database by hand (as a retention job would): deletes and updates count too.
  const db = new pg.Client({ connectionString: svc.database });
  await db.connect();
  t.teardown(() => db.end());
  await db.query('delete from cache_records where ns = $1 and digest = $2', [svc.ns.a, key('two')]);
  t.deepEqual(await digests(), [key('base'), key('one')].sort());
  await db.query('update cache_results set created_at = $2 where ns = $1', [
    svc.ns.a,
    '2030-01-02T03:04:05Z',
  ]);
  const one = (await reader.importCache()).records.find((r) => r.digest === key('one'));
  t.is(one?.results[0]?.createdAt, '2030-01-02T03:04:05Z');
});

test('a result of 60 layers is kept and imported', async (t) => {
  const svc = await sharedService(t, 'pglite');
  if (!svc) return;
  const client = svc.client();
  const layers = Array.from({ length: 60 }, () => blob(32));
  for (const layer of layers) await client.uploadLayer(layer, layer.bytes);
  await client.updateCacheRecords({ records: [{ digest: key('deep'), results: [{ id: 'r' }] }] });
  const report = {
    results: [
      {
        recordDigest: key('deep'),
        layers: layers.map((l) => ({ mediaType: 'x', digest: l.digest, size: l.size })),
      },
    ],
  };
  t.is(await client.updateCacheLayers(report), 1);
  t.is(await client.updateCacheLayers(report), 0, 'reporting it again adds nothing');
  const config = await client.importCache();
  t.is(config.layers.length, 60);
  t.is(config.records[0]?.results[0]?.layer, 59);
});

test('an expired URL is refused with URL_EXPIRED', async (t) => {
  const svc = await startService(t, 'pglite', { urlTtlSeconds: 0 });
  if (!svc) return;
  const client = svc.client();
  const layer = blob(10);
  const { url } = await client.getLayerUploadUrl(layer.digest);
  await rejects(client.putUrl(url, layer.size, layer.bytes), 'URL_EXPIRED');
  t.is(await svc.server.service.records.blob('a', layer.digest), undefined);
});

test('downloads honour Range', async (t) => {
  const svc = await sharedService(t, 'pglite');
  if (!svc) return;
  const client = svc.client();
  const layer = blob(1000);
  await client.uploadLayer(layer, layer.bytes);
  const { url } = await client.getLayerDownloadUrl(layer.digest);
  const chunks: Buffer[] = [];
  for await (const chunk of await client.getUrl(url, { range: 'bytes=100-199' }))
    chunks.push(chunk as Buffer);
  t.deepEqual(Buffer.concat(chunks), layer.bytes.subarray(100, 200));
  await rejects(client.getUrl(url, { range: 'bytes=2000-' }), 'RANGE_NOT_SATISFIABLE');
});

test('a download of many chunks comes whole and in ranges across chunk edges, also to a client that reads late', async (t) => {
  const svc = await sharedService(t, 'pglite');
  if (!svc) return;
  const client = svc.client();
  // Larger than the kernel's socket buffers: the service must wait for each chunk to be taken.
  const layer = blob(24 * SEND_CHUNK + 12345);
  await client.uploadLayer(layer, layer.bytes);
  const { url } = await client.getLayerDownloadUrl(layer.digest);
  const read = async (body: Readable) => {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const late = await client.getUrl(url);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.true((await read(late)).equals(layer.bytes));
  const [start, end] = [SEND_CHUNK - 7, 2 * SEND_CHUNK + 3];
  const part = await read(await client.getUrl(url, { range: `bytes=${start}-${end}` }));
  t.true(part.equals(layer.bytes.subarray(start, end + 1)));
});

test('a download the client leaves does not stop the next one; a file shorter than its blob cuts the response', async (t) => {
  const svc = await sharedService(t, 'pglite');
  if (!svc) return;
  const client = svc.client();
  const layer = blob(4 * SEND_CHUNK);
  await client.uploadLayer(layer, layer.bytes);
  const url = async () => (await client.getLayerDownloadUrl(layer.digest)).url;
  const left = await client.getUrl(await url());
  for await (const _ of left) break; // one chunk, then the client goes away
  const chunks: Buffer[] = [];
  for await (const chunk of await client.getUrl(await url())) chunks.push(chunk as Buffer);
  t.true(Buffer.concat(chunks).equals(layer.bytes));
  const file = join(svc.dataDir, 'blobs', 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
  await truncate(file, SEND_CHUNK + 10);
  const cut = await client.getUrl(await url());
  await t.throwsAsync(async () => {
    for await (const _ of cut);
  });
  t.is((await client.getConfig()).namespace, svc.ns.a, 'the service goes on serving');
});

test('closing the service ends a connection that carried no request at once, and lets an upload in flight finish', async (t) => {
  const svc = await startService(t, 'pglite');
  if (!svc) return;
  const { hostname, port } = new URL(svc.server.url);
  // A connection opened ahead, as clients and load balancers do, that never sends a byte.
  const unused = connect(Number(port), hostname);
  await once(unused, 'connect');
  const heard: Buffer[] = [];
  unused.on('data', (chunk: Buffer) => heard.push(chunk));
  const ended = once(unused, 'close');
  const layer = blob(1000);
  const { url } = await svc.client().getLayerUploadUrl(layer.digest, layer.size);
  const upload = httpRequest(url, {
    method: 'PUT',
    headers: { 'content-length': layer.size, expect: '100-continue' },
  });
  const answered = once(upload, 'response') as Promise<[IncomingMessage]>;
  // The service has the request (it said continue) and half its body when it is told to close.
  await once(upload, 'continue');
  upload.write(layer.bytes.subarray(0, 500));
  const closed = svc.server.close();
  await ended;
  t.deepEqual(heard, [], 'ended by the service, without an answer');
  upload.end(layer.bytes.subarray(500));
  const [response] = await answered;
  response.resume();
  t.is(response.statusCode, 201);
  await closed;
  const file = join(svc.dataDir, 'blobs', 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
  t.true((await readFile(file)).equals(layer.bytes));
});

test('cache mounts: upload at shutdown, listed with a download URL at start', async (t) => {
  const svc = await sharedService(t, 'pglite');
  if (!svc) return;
  const client = svc.client();
  const tarball = blob(300);
  await client.uploadCacheMount('go-build', tarball, tarball.bytes);
  const mounts = await client.getCacheMountConfig();
  t.is(mounts.length, 1);
  t.like(mounts[0], { name: 'go-build', digest: tarball.digest, size: 300 });
  const chunks: Buffer[] = [];
  for await (const chunk of await client.getUrl(mounts[0]?.url ?? '')) chunks.push(chunk as Buffer);
  t.deepEqual(Buffer.concat(chunks), tarball.bytes);
});

test('blobs in a registry: uploads are verified into the repository, downloads stream from it with Range', async (t) => {
  const registry = await startRegistry(t);
  const blobs = await StoreBlobStore.open(`${registry.host}/cache/blobs`);
  const svc = await startService(t, 'pglite', { blobs });
  if (!svc) return;
  const client = svc.client();
  const layer = blob(70_000);
  await client.uploadLayer(layer, layer.bytes);
  const wrong = blob(100);
  // A digest that is neither the layer's nor the wrong bytes': the upload cannot match it.
  const minted = await client.getLayerUploadUrl(blob(50).digest);
  await rejects(client.putUrl(minted.url, wrong.size, wrong.bytes), 'DIGEST_MISMATCH');
  const heads = await registry.requests({
    method: 'HEAD',
    path: new RegExp(`/blobs/${layer.digest}`),
  });
  t.true(heads.length >= 1);
  const puts = await registry.requests({ method: 'PUT', path: /\/blobs\/uploads\//, status: 201 });
  t.is(puts.length, 1, 'only the verified blob was committed in the registry');
  const { url } = await client.getLayerDownloadUrl(layer.digest);
  const chunks: Buffer[] = [];
  for await (const chunk of await client.getUrl(url, { range: 'bytes=1000-1999' }))
    chunks.push(chunk as Buffer);
  t.deepEqual(Buffer.concat(chunks), layer.bytes.subarray(1000, 2000));
  const gets = await registry.requests({
    method: 'GET',
    path: new RegExp(`/blobs/${layer.digest}`),
  });
  t.is(gets.length, 1);
});
