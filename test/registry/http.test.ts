import test from 'ava';
import { RegistryError } from '../../src/registry/errors.ts';
import type { RequestEvent } from '../../src/registry/http.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { startRegistry } from '../helpers/registry.ts';
import { ALICE_PASSWORD, clientFor, imageParts } from './_support.ts';

const MISSING = `sha256:${'0'.repeat(64)}`;

test('Warning headers are reported once per distinct text', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, [
    {
      method: 'HEAD',
      path: /\/manifests\//,
      action: {
        status: 404,
        headers: { warning: '299 - "this registry is deprecated", 299 - "move to r2"' },
      },
    },
  ]);
  const warnings: string[] = [];
  const client = clientFor(t, proxy.host, undefined, { onWarning: (w) => warnings.push(w) });
  const repo = client.repository(proxy.host, 'warn/app');
  for (let i = 0; i < 3; i++) t.is(await repo.headManifest('v1'), undefined);
  t.deepEqual(warnings, ['this registry is deprecated', 'move to r2']);
});

test('endless redirects stop with TOO_MANY_REDIRECTS', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, action: { redirectToCdn: true } },
    { at: 'cdn', method: 'GET', action: { redirectToCdn: true, status: 302 } },
  ]);
  const client = clientFor(t, proxy.host, undefined);
  const err = await t.throwsAsync(
    client.repository(proxy.host, 'loop/app').fetchBlob({ digest: MISSING }),
    {
      instanceOf: RegistryError,
    },
  );
  t.is(err?.code, 'TOO_MANY_REDIRECTS');
  t.is(proxy.cdn.requests.length, 10);
});

test('onRequest sees every exchange with secrets stripped from the URL', async (t) => {
  const registry = await startRegistry(t, { auth: 'basic' });
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, action: { redirectToCdn: true } },
  ]);
  const events: RequestEvent[] = [];
  const client = clientFor(
    t,
    proxy.host,
    { kind: 'basic', username: 'alice', password: ALICE_PASSWORD },
    { onRequest: (e) => events.push(e) },
  );
  const image = await imageParts(client, proxy.host, 'events/app', 'events');
  events.length = 0;
  const before = client.requestCount;
  await (await client.repository(proxy.host, 'events/app').fetchBlob(image.layer)).toArray();
  t.is(client.requestCount - before, 2);
  t.deepEqual(
    events.map((e) => [e.method, e.status]),
    [
      ['GET', 307],
      ['GET', 200],
    ],
  );
  t.regex(
    events[1]?.url ?? '',
    /^http:\/\/127\.0\.0\.1:\d+\/v2\/events\/app\/blobs\/sha256:[0-9a-f]{64}\?cdn-ticket=REDACTED$/,
  );
});

test('requests beyond the per-host concurrency wait for a free slot', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, []);
  const elapsed = async (concurrency: number) => {
    const client = clientFor(t, proxy.host, undefined, { concurrency });
    const repo = client.repository(proxy.host, 'slow/app');
    await repo.headBlob(MISSING);
    const rule = { method: 'HEAD', path: /\/blobs\//, times: 6, action: { delayMs: 300 } };
    proxy.rules.splice(0, proxy.rules.length, rule);
    const started = Date.now();
    await Promise.all(Array.from({ length: 6 }, () => repo.headBlob(MISSING)));
    return Date.now() - started;
  };
  const serial = await elapsed(2);
  t.true(serial >= 880, `6 requests, 2 at a time, took ${serial} ms`);
  const parallel = await elapsed(6);
  t.true(parallel < 880, `6 requests, 6 at a time, took ${parallel} ms`);
});

test('plain HTTP is refused to a registry that is not allowed it', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const events: RequestEvent[] = [];
  const client = clientFor(t, registry.host, undefined, {
    plainHttp: false,
    onRequest: (e) => events.push(e),
  });
  const err = await t.throwsAsync(client.repository(registry.host, 'tls/app').headBlob(MISSING), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'TLS_ERROR');
  t.regex(events[0]?.url ?? '', /^https:/);
  t.is(events.length, 1, 'TLS failures are not retried');
});

test('an unreachable registry fails with CONNECTION_FAILED after the retries', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const host = registry.host;
  await registry.stop();
  const events: RequestEvent[] = [];
  const client = clientFor(t, host, undefined, { onRequest: (e) => events.push(e) });
  const err = await t.throwsAsync(client.repository(host, 'gone/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'CONNECTION_FAILED');
  t.is(err?.status, undefined);
  t.is(events.length, 5);
});

test('a registry that does not answer in time fails with TIMEOUT', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 5000 } },
  ]);
  const client = clientFor(t, proxy.host, undefined, {
    timeouts: { headersMs: 200 },
    retry: { attempts: 2, baseDelayMs: 1 },
  });
  const started = Date.now();
  const err = await t.throwsAsync(client.repository(proxy.host, 'slow/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'TIMEOUT');
  t.true(Date.now() - started < 3000);
});

test('an aborted request rejects with the abort reason at once', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 5000 } },
  ]);
  const client = clientFor(t, proxy.host, undefined);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('user gave up')), 100);
  const started = Date.now();
  await t.throwsAsync(
    client.repository(proxy.host, 'slow/app').getManifest('v1', { signal: controller.signal }),
    {
      message: 'user gave up',
    },
  );
  t.true(Date.now() - started < 2000);
});
