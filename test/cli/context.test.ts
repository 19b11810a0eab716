import { readFile } from 'node:fs/promises';
import test, { type ExecutionContext } from 'ava';
import { type FaultRule, startFaultProxy } from '../helpers/fault-proxy.ts';
import { fixturePath, pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { ociferry } from './support/cli.ts';

const QUOTA_WARNING = /^warning: .* rate limit nearly used up: .*$/gm;
/** The registry of every test here: the quota tests read one image through proxies of their own. */
const shared = sharedRegistry(test);

/**
 * A repository behind a proxy; `throttle(remaining)` makes the next two tag listings answer 429
 * stating `remaining` of 100 requests left (Docker Hub's `RateLimit-*` headers), and returns
 * how many of them were served so far.
 */
async function throttledRepository(
  t: ExecutionContext,
): Promise<{ repository: string; registry: string; throttle(remaining: number): () => number }> {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'app/single');
  const proxy = await startFaultProxy(t, registry.url);
  const throttle = (remaining: number) => {
    const rule: FaultRule = {
      method: 'GET',
      path: /\/tags\/list/,
      times: 2,
      action: {
        status: 429,
        headers: {
          'content-type': 'application/json',
          'retry-after': '0',
          'ratelimit-limit': '100;w=21600',
          'ratelimit-remaining': `${remaining};w=21600`,
        },
        body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
      },
    };
    proxy.rules.push(rule);
    return () => proxy.hits(rule);
  };
  return { repository: `${proxy.host}/app/single`, registry: proxy.host, throttle };
}

test('a registry quota below 10% is reported once however many answers state it, not with -q or --json', async (t) => {
  const { repository, registry, throttle } = await throttledRepository(t);

  let served = throttle(9);
  const run = await ociferry(['tags', repository]);
  t.is(run.code, 0, run.stderr);
  t.is(served(), 2, 'two answers stated the quota');
  t.deepEqual(run.stderr.match(QUOTA_WARNING), [
    `warning: ${registry} rate limit nearly used up: 100 requests per 21600 s, 9 remaining; later requests may be refused (429) until the window resets`,
  ]);

  for (const flag of ['-q', '--json']) {
    served = throttle(9);
    const quiet = await ociferry([flag, 'tags', repository]);
    t.is(quiet.code, 0, quiet.stderr);
    t.is(served(), 2);
    t.is(quiet.stderr, '', flag);
  }
});

test('a registry quota with 10% or more left is not reported', async (t) => {
  const { repository, throttle } = await throttledRepository(t);
  const served = throttle(10);
  const run = await ociferry(['tags', repository]);
  t.is(run.code, 0, run.stderr);
  t.is(served(), 2);
  t.is(run.stderr, '');
  t.regex(run.stdout, /^v1$/m);
});

test('runs in one process keep nothing for each other: a second cache check reads the config and checks the blobs again', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-manifest', 'cache/app');
  const from = `type=registry,ref=${registry.host}/cache/app:latest`;
  const keys = JSON.parse(await readFile(fixturePath('cache-keys.json'), 'utf8'));
  const key: string = keys.hits[0];
  const counts: number[][] = [];
  for (let run = 0; run < 2; run++) {
    const mark = await registry.mark();
    const result = await ociferry(['cache', 'check', '--from', from, key]);
    t.is(result.code, 0, result.stderr);
    const seen = await registry.requests({ since: mark, path: /\/blobs\// });
    counts.push(['GET', 'HEAD'].map((method) => seen.filter((e) => e.method === method).length));
  }
  t.true((counts[0]?.[0] ?? 0) > 0, 'the first run reads the config');
  t.true((counts[0]?.[1] ?? 0) > 0, 'the first run checks the blobs');
  t.deepEqual(counts[1], counts[0], 'the second run sends the same blob requests');
});
