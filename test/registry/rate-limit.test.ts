import test from 'ava';
import { RegistryError } from '../../src/registry/errors.ts';
import { parseRateLimit, type RateLimit } from '../../src/registry/rate-limit.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { clientFor } from './_support.ts';

/** The registry of the tests that count what their proxy saw, none of its own requests. */
const shared = sharedRegistry(test);

const DOCKER_HUB_QUOTA = {
  'ratelimit-limit': '100;w=21600',
  'ratelimit-remaining': '76;w=21600',
  'docker-ratelimit-source': '192.0.2.7',
};

test('quota headers are read as Docker Hub and the IETF draft write them', (t) => {
  t.deepEqual(parseRateLimit(DOCKER_HUB_QUOTA), {
    limit: 100,
    remaining: 76,
    windowSeconds: 21600,
  });
  t.deepEqual(parseRateLimit({ 'ratelimit-limit': '200', 'ratelimit-remaining': '3' }), {
    limit: 200,
    remaining: 3,
  });
  t.deepEqual(parseRateLimit({ 'ratelimit-limit': ['5000 ; w=3600 ; comment="x"'] }), {
    limit: 5000,
    windowSeconds: 3600,
  });
  t.is(parseRateLimit({}), undefined, 'no headers: an unlimited pull');
  t.is(parseRateLimit({ 'ratelimit-limit': 'lots' }), undefined);
  t.deepEqual(parseRateLimit({ 'ratelimit-limit': '10', 'ratelimit-remaining': 'unknown' }), {
    limit: 10,
  });
});

test('a 429 names the quota the registry stated and keeps it on the error', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, [
    {
      method: 'GET',
      path: /\/manifests\//,
      action: {
        status: 429,
        headers: {
          'content-type': 'application/json',
          'ratelimit-limit': '100;w=21600',
          'ratelimit-remaining': '0;w=21600',
        },
        body: JSON.stringify({
          errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }],
        }),
      },
    },
  ]);
  const client = clientFor(t, proxy.host, undefined, { retry: { attempts: 1 } });
  const err = await t.throwsAsync(client.repository(proxy.host, 'limited/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'TOO_MANY_REQUESTS');
  t.deepEqual(err?.rateLimit, { limit: 100, remaining: 0, windowSeconds: 21600 });
  t.regex(
    err?.message ?? '',
    /You have reached your pull rate limit\.; the registry's quota is 100 requests per 21600 s, 0 remaining; wait, log in, or lower the concurrency$/,
  );
});

test('onRateLimit hears the quota of every registry answer that states one', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'HEAD', path: /\/manifests\//, action: { status: 404, headers: DOCKER_HUB_QUOTA } },
  ]);
  const heard: [string, RateLimit][] = [];
  const client = clientFor(t, proxy.host, undefined, {
    onRateLimit: (host, quota) => heard.push([host, quota]),
  });
  const repo = client.repository(proxy.host, 'quota/app');
  t.is(await repo.headManifest('v1'), undefined);
  t.is(await repo.headManifest('v2'), undefined);
  t.is(await repo.headBlob(`sha256:${'0'.repeat(64)}`), undefined);
  const quota = { limit: 100, remaining: 76, windowSeconds: 21600 };
  t.deepEqual(heard, [
    [proxy.host, quota],
    [proxy.host, quota],
  ]);
});
