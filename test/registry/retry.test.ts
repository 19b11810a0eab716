import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { OCI_MANIFEST } from '../../src/oci/index.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import { backoffDelay, parseRetryAfter, retryPolicy, withRetry } from '../../src/registry/retry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { ALICE_PASSWORD, clientFor, imageParts } from './_support.ts';

test('Retry-After is read as seconds or as an HTTP date', (t) => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  t.is(parseRetryAfter('3', now), 3000);
  t.is(parseRetryAfter(' 0 ', now), 0);
  t.is(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  t.is(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
  t.is(parseRetryAfter('soon', now), undefined);
  t.is(parseRetryAfter('-1', now), undefined);
  t.is(parseRetryAfter(undefined, now), undefined);
});

test('backoff grows exponentially, stays within its cap and jitters', (t) => {
  const policy = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.double({ min: 0, max: 0.999999, noNaN: true }),
      (attempt, r) => {
        const ceiling = Math.min(1000, 100 * 2 ** (attempt - 1));
        const delay = backoffDelay(attempt, policy, () => r);
        return delay >= ceiling / 2 && delay <= ceiling;
      },
    ),
  );
  t.not(
    backoffDelay(3, policy, () => 0),
    backoffDelay(3, policy, () => 0.99),
  );
});

test('withRetry repeats retryable failures only, up to the attempts', async (t) => {
  const policy = retryPolicy({ attempts: 3, baseDelayMs: 1 });
  const busy = () => new RegistryError({ status: 503, method: 'GET', url: 'http://r/v2/' });
  let calls = 0;
  await t.throwsAsync(
    withRetry(policy, async () => {
      calls++;
      throw busy();
    }),
    { instanceOf: RegistryError },
  );
  t.is(calls, 3);
  calls = 0;
  await t.throwsAsync(
    withRetry(policy, async () => {
      calls++;
      throw new RegistryError({ status: 404, method: 'GET', url: 'http://r/v2/' });
    }),
  );
  t.is(calls, 1);
  calls = 0;
  t.is(
    await withRetry(policy, async (attempt) => {
      calls++;
      if (attempt < 2) throw busy();
      return 'ok';
    }),
    'ok',
  );
  t.is(calls, 2);
});

test('a Retry-After longer than the policy allows is not waited for', async (t) => {
  const policy = retryPolicy({ maxRetryAfterMs: 1000 });
  let calls = 0;
  const err = await t.throwsAsync(
    withRetry(policy, async () => {
      calls++;
      throw new RegistryError({
        status: 429,
        method: 'GET',
        url: 'http://r/v2/',
        retryAfterMs: 3_600_000,
      });
    }),
    { instanceOf: RegistryError },
  );
  t.is(calls, 1);
  t.is(err?.code, 'TOO_MANY_REQUESTS');
  t.is(err?.retryAfterMs, 3_600_000);
});

test('aborting stops the wait between attempts', async (t) => {
  const controller = new AbortController();
  // A wait longer than any test may take: only an abort ends it in time.
  const policy = retryPolicy({ baseDelayMs: 600_000, maxDelayMs: 600_000 });
  let attempts = 0;
  const retrying = withRetry(
    policy,
    async () => {
      attempts++;
      // Abort while the policy waits before the second attempt.
      setImmediate(() => controller.abort(new Error('stop')));
      throw new RegistryError({ status: 503, method: 'GET', url: 'http://r/v2/' });
    },
    controller.signal,
  );
  await t.throwsAsync(retrying, { message: 'stop' });
  t.is(attempts, 1);
});

/** The registry of the tests that push an image; each test has a repository of its own. */
const shared = sharedRegistry(test, { auth: 'basic' });
let repositories = 0;

/** An image pushed through a fault proxy in front of the test's view of the registry. */
async function proxiedImage(t: ExecutionContext) {
  const registry = await shared(t);
  const proxy = await startFaultProxy(t, registry.url, []);
  const client = clientFor(t, proxy.host, {
    kind: 'basic',
    username: 'alice',
    password: ALICE_PASSWORD,
  });
  const name = `retry/app-${++repositories}`;
  const repo = client.repository(proxy.host, name);
  const image = await imageParts(client, proxy.host, name, 'retry');
  await repo.putManifest('v1', image.manifest, OCI_MANIFEST);
  return { registry, proxy, repo, image };
}

test('a 429 with Retry-After is retried after the wait the registry asked for', async (t) => {
  const { proxy, repo, image } = await proxiedImage(t);
  const rule = {
    method: 'GET',
    path: /\/manifests\/v1$/,
    times: 1,
    action: {
      status: 429,
      headers: { 'retry-after': '1' },
      body: '{"errors":[{"code":"TOOMANYREQUESTS"}]}',
    },
  };
  proxy.rules.push(rule);
  const started = Date.now();
  t.is((await repo.getManifest('v1')).descriptor.digest, image.digest);
  t.true(Date.now() - started >= 950, `waited ${Date.now() - started} ms`);
  t.is(proxy.hits(rule), 1);
});

test('503s on idempotent requests are retried until the registry answers', async (t) => {
  const { registry, proxy, repo, image } = await proxiedImage(t);
  const rules = [
    { method: 'HEAD', path: /\/manifests\/v1$/, times: 2, action: { status: 503 } },
    { method: 'PUT', path: /\/manifests\/v2$/, times: 2, action: { status: 502 } },
    { method: 'GET', path: /\/blobs\//, times: 1, action: { status: 504 } },
  ];
  proxy.rules.push(...rules);
  t.is((await repo.headManifest('v1'))?.digest, image.digest);
  t.is((await repo.putManifest('v2', image.manifest, OCI_MANIFEST)).digest, image.digest);
  t.is((await (await repo.fetchBlob(image.layer)).toArray()).length > 0, true);
  t.deepEqual(
    rules.map((r) => proxy.hits(r)),
    [2, 2, 1],
  );
  t.is((await registry.requests({ method: 'PUT', path: /\/manifests\/v2$/ })).length, 1);
});

test('a request that keeps failing reports the last status after the attempts', async (t) => {
  const { proxy, repo } = await proxiedImage(t);
  const rule = { method: 'GET', path: /\/manifests\/v1$/, action: { status: 503 } };
  proxy.rules.push(rule);
  const err = await t.throwsAsync(repo.getManifest('v1'), { instanceOf: RegistryError });
  t.is(err?.status, 503);
  t.is(err?.code, 'SERVER_ERROR');
  t.is(proxy.hits(rule), 5);
});

test('a 400 is not retried', async (t) => {
  const { proxy, repo } = await proxiedImage(t);
  const rule = {
    method: 'GET',
    path: /\/manifests\/v1$/,
    action: { status: 400, body: '{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}' },
  };
  proxy.rules.push(rule);
  const err = await t.throwsAsync(repo.getManifest('v1'), { instanceOf: RegistryError });
  t.is(err?.code, 'MANIFEST_INVALID');
  t.is(proxy.hits(rule), 1);
});
