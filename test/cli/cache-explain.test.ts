import test from 'ava';
import { copy } from '../../src/copy/index.ts';
import { resolve } from '../../src/remote/index.ts';
import { writeSampleImages } from '../cache/_buildkit.ts';
import { client } from '../cache/_support.ts';
import { sharedRegistry, type WatchedRegistry } from '../helpers/registry.ts';
import { ociferry } from './support/cli.ts';

const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;

/** The registry of every test here; each test has a repository of its own. */
const shared = sharedRegistry(test);

/** Push the recorded BuildKit images `names` to `repo:<name>` and return the test's view of the registry. */
async function pushSamples(
  t: Parameters<typeof writeSampleImages>[0],
  names: string[],
  repo: string,
): Promise<WatchedRegistry> {
  const registry = await shared(t);
  const dir = await writeSampleImages(t, names);
  const c = client(t);
  for (const name of names) {
    await copy(
      await resolve(`oci:${dir}:${name}`, { client: c }),
      `${registry.host}/${repo}:${name}`,
      {
        client: c,
      },
    );
  }
  return registry;
}

test('cache explain --json: which steps a rebuild serves from the cache, reading no layer', async (t) => {
  const registry = await pushSamples(t, ['content-v1', 'content-v2'], 'app');
  const mark = await registry.mark();
  const run = await ociferry([
    'cache',
    'explain',
    '--json',
    '--build',
    `${registry.host}/app:content-v2`,
    '--from',
    `type=registry,ref=${registry.host}/app:content-v1`,
  ]);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.deepEqual(Object.keys(result).slice(0, 5), [
    'steps',
    'cached',
    'total',
    'finalCached',
    'requests',
  ]);
  t.like(result, { cached: 2, total: 4, finalCached: false, layerBytesDownloaded: 0 });
  t.deepEqual(
    result.steps.map((step: { cached: boolean; code: string; createdBy: string }) => [
      step.createdBy,
      step.cached,
      step.code,
    ]),
    [
      ['COPY a.txt /a.txt # buildkit', true, 'skipped'],
      ['RUN /bin/sh -c echo one > /one # buildkit', true, 'loaded'],
      ['COPY c.txt /c.txt # buildkit', false, 'content-changed'],
      ['RUN /bin/sh -c cat /c.txt > /d # buildkit', false, 'parent-runs'],
    ],
  );
  for (const step of result.steps) t.is(typeof step.reason, 'string');
  t.deepEqual(Object.keys(result.steps[0]).slice(0, 3), ['digest', 'cached', 'reason']);
  // Server side: manifests and image configs only; blobs were HEADed, never fetched but configs.
  const gets = await registry.requests({ method: 'GET', path: BLOB_GET, since: mark });
  t.is(gets.length, 2, 'the two image configs');
  t.is(result.requests > 0, true);
});

test('cache explain prints one line per step and a summary', async (t) => {
  const registry = await pushSamples(t, ['stage-v1', 'stage-v2'], 'ms');
  const run = await ociferry([
    'cache',
    'explain',
    '--build',
    `${registry.host}/ms:stage-v2`,
    '--from',
    `${registry.host}/ms:nothing-here`,
    '--from',
    `${registry.host}/ms:stage-v1`,
  ]);
  t.is(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.is(lines.length, 6);
  t.regex(lines[0] ?? '', /^cached sha256:8bcd204ac7fa… COPY y\.txt \/y\.txt: not needed/);
  t.regex(
    lines[1] ?? '',
    /^runs {3}sha256:9121bc455631…: the caches have this step but keep no result/,
  );
  t.regex(
    lines[3] ?? '',
    /^cached sha256:39aa77cf11a8… COPY \/built \/built: loaded from type=registry/,
  );
  t.is(lines[5], '3/5 steps cached; the final step is cached');
  t.regex(run.stderr, /warning: no cache at .*nothing-here.*; skipped/);
});

test('cache explain without --build is a usage error', async (t) => {
  const run = await ociferry(['cache', 'explain', '--from', 'localhost:5000/a:b']);
  t.is(run.code, 2);
  t.regex(run.stderr, /--build/);
});

test('cache explain: a result whose blob the registry lost runs, found by HEAD', async (t) => {
  const registry = await pushSamples(t, ['chain-v1'], 'lost');
  const c = client(t);
  const image = await resolve(`${registry.host}/lost:chain-v1`, { client: c });
  if (image.kind !== 'image') return t.fail('an image');
  const lost = image.manifest.layers[4]?.digest as string; // COPY c.txt's layer
  const deleted = await fetch(`${registry.url}/v2/lost/blobs/${lost}`, { method: 'DELETE' });
  t.is(deleted.status, 202);
  const mark = await registry.mark();
  const ref = `${registry.host}/lost:chain-v1`;
  const run = await ociferry(['cache', 'explain', '--json', '--build', ref, '--from', ref]);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.deepEqual(
    result.steps.map((step: { code: string }) => step.code),
    ['skipped', 'skipped', 'loaded', 'blobs-missing', 'blobs-missing'],
  );
  t.deepEqual(result.steps[3].missingBlobs, [lost]);
  const heads = await registry.requests({ method: 'HEAD', since: mark });
  t.true(heads.some((entry) => entry.path.endsWith(lost)));
  const gets = await registry.requests({ method: 'GET', path: BLOB_GET, since: mark });
  t.true(gets.length > 0);
  for (const get of gets) t.true(get.path.endsWith(image.manifest.config.digest), 'configs only');
});
