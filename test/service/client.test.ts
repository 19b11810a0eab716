import test, { type ExecutionContext } from 'ava';
import { CacheServiceClient } from '../../src/service/client.ts';
import { CacheServiceError } from '../../src/service/errors.ts';
import type { RequestLogLine } from '../../src/service/server.ts';
import { type FaultRule, startFaultProxy } from '../helpers/fault-proxy.ts';
import { freePort } from '../helpers/free-port.ts';
import { blob, key, sharedService, startService, stopShared, TOKENS } from './_support.ts';

test.after.always(stopShared);

/**
 * The file's service behind a fault proxy of the test's own, as behind a load balancer.
 * `served(path)` counts the requests of the test's namespaces the service itself answered on
 * `path`.
 */
async function behindProxy(t: ExecutionContext, rules: FaultRule[] = []) {
  const svc = await sharedService(t, 'pglite');
  if (!svc) throw new Error('no service');
  const proxy = await startFaultProxy(t, svc.server.url, rules);
  const client = (token = svc.tokens.a) =>
    new CacheServiceClient({ url: proxy.url, token, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
  const served = (path: RegExp, method?: string) =>
    svc.requests().filter((line) => path.test(line.path) && (!method || line.method === method))
      .length;
  return { svc, proxy, client, served };
}

/**
 * A service of the test's own behind a fault proxy, its minted URLs pointing at the proxy too.
 * `served(path)` counts the requests the service itself answered on `path`.
 */
async function ownBehindProxy(t: ExecutionContext, rules: FaultRule[] = []) {
  const log: RequestLogLine[] = [];
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const proxy = await startFaultProxy(t, `http://127.0.0.1:${port}`, rules);
    try {
      const svc = await startService(t, 'pglite', {
        listen: `127.0.0.1:${port}`,
        publicUrl: proxy.url,
        log: (line) => log.push(line),
      });
      if (!svc) throw new Error('no service');
      const client = (token = TOKENS.a) =>
        new CacheServiceClient({
          url: proxy.url,
          token,
          retry: { baseDelayMs: 5, maxDelayMs: 20 },
        });
      const served = (path: RegExp, method?: string) =>
        log.filter((line) => path.test(line.path) && (!method || line.method === method)).length;
      return { svc, proxy, client, served, log };
    } catch (error) {
      await proxy.stop();
      if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt >= 3) throw error;
    }
  }
}

test('idempotent calls are retried after a dropped answer and a load balancer 502/503; the service applies them once', async (t) => {
  const rules: FaultRule[] = [
    { method: 'POST', path: /^\/v1\/records$/, times: 1, action: { dropAnswer: true } },
    { method: 'GET', path: /^\/v1\/import$/, times: 1, action: { status: 502 } },
    {
      method: 'GET',
      path: /^\/v1\/import$/,
      times: 1,
      action: { status: 503, headers: { 'retry-after': '0' } },
    },
  ];
  const { client, served, proxy } = await behindProxy(t, rules);
  const engine = client();
  const wanted = await engine.updateCacheRecords({
    records: [{ digest: key('a'), results: [{ id: 'ref-a' }] }],
  });
  t.deepEqual(wanted, [{ digest: key('a'), cacheRefID: 'ref-a' }]);
  t.is(served(/^\/v1\/records$/), 2, 'the service answered the dropped request and its retry');
  const config = await engine.importCache();
  t.deepEqual(
    config.records.map((r) => r.digest),
    [key('a')],
  );
  t.is(proxy.hits(rules[1] as FaultRule), 1);
  t.is(proxy.hits(rules[2] as FaultRule), 1);
  t.is(served(/^\/v1\/import$/), 1, 'the 502 and 503 came from the proxy, never the service');
});

test('an upload whose answer is dropped is retried with a fresh URL when its body can be sent again; a stream is sent once', async (t) => {
  const drop: FaultRule = {
    method: 'PUT',
    path: /^\/v1\/blobs\//,
    times: 1,
    action: { dropAnswer: true },
  };
  const { client, served, proxy } = await ownBehindProxy(t, [drop]);
  const engine = client();
  const layer = blob(4096);
  t.deepEqual(await engine.uploadLayer(layer, layer.bytes), { uploaded: true });
  t.is(proxy.hits(drop), 1);
  t.is(served(/^\/v1\/blobs\//, 'PUT'), 2, 'the dropped PUT and its retry');
  t.is(served(/^\/v1\/layer-upload-url$/), 2, 'each attempt minted its URL');
  t.is(engine.minted.upload, 2);
  t.is((await engine.getLayerDownloadUrl(layer.digest)).size, 4096);

  // Opened by a function: the retry's fresh URL says the dropped PUT committed, so none is sent.
  drop.times = 2;
  const again = blob(1024);
  let opened = 0;
  const open = () => {
    opened++;
    return again.bytes;
  };
  t.deepEqual(await engine.uploadLayer(again, open), { uploaded: false });
  t.is(opened, 1);
  t.is(served(/^\/v1\/blobs\//, 'PUT'), 3);
  t.is((await engine.getLayerDownloadUrl(again.digest)).size, 1024);

  // A stream cannot be sent again: the failure is the caller's to handle.
  drop.times = 3;
  const other = blob(2048);
  const { Readable } = await import('node:stream');
  const error = await engine
    .uploadLayer(other, Readable.from([other.bytes]))
    .catch((e: unknown) => e);
  t.true(error instanceof CacheServiceError, String(error));
  t.is((error as CacheServiceError).code, 'CONNECTION_FAILED');
  t.is(proxy.hits(drop), 3);
  t.is(served(/^\/v1\/blobs\//, 'PUT'), 4, 'sent once');
});

test('a call that keeps failing gives up after the policy attempts with the last error; client errors are not retried', async (t) => {
  const always: FaultRule = { method: 'GET', path: /^\/v1\/config$/, action: { status: 503 } };
  const { client, proxy } = await behindProxy(t, [always]);
  const error = await client()
    .getConfig()
    .catch((e: unknown) => e);
  t.true(error instanceof CacheServiceError);
  t.like(error, { status: 503, retryable: true });
  t.is(proxy.hits(always), 5, 'five attempts, the default policy');
  const denied = await client('no-such-token-0123456789')
    .importCache()
    .catch((e: unknown) => e);
  t.like(denied, { code: 'UNAUTHORIZED', status: 401 });
  // The service's 401 names no namespace: the proxy, which forwards every import, counts it.
  t.is(
    proxy.forwarded.filter((request) => request.path === '/v1/import').length,
    1,
    'a 401 is not retried',
  );
});

test('prune is not repeated after a dropped answer: the service pruned once, the caller gets the failure', async (t) => {
  const drop: FaultRule = {
    method: 'POST',
    path: /^\/v1\/prune$/,
    times: 1,
    action: { dropAnswer: true },
  };
  const { client, served, proxy } = await behindProxy(t, [drop]);
  const error = await client()
    .prune()
    .catch((e: unknown) => e);
  t.like(error, { code: 'CONNECTION_FAILED', retryable: false });
  t.is(proxy.hits(drop), 1);
  t.is(served(/^\/v1\/prune$/), 1, 'the service answered it once');
  t.like(await client().prune(), { kept: { results: 0 }, dropped: { results: 0 } });
});
