import test from 'ava';
import { CredentialStore, RegistryClient } from '../../src/registry/index.ts';
import { buildCaches, layerBlobs, pushCache } from '../cache/_builds.ts';
import { startRegistry } from '../helpers/registry.ts';
import { ociferry } from './support/cli.ts';

function client(t: import('ava').ExecutionContext): RegistryClient {
  const c = new RegistryClient({ credentials: new CredentialStore({ explicit: {}, env: {} }) });
  t.teardown(() => c.close());
  return c;
}

test('cache merge --json then cache prune --keep-last 1 in place', async (t) => {
  const registry = await startRegistry(t);
  const blobs = layerBlobs();
  const { a, b } = buildCaches(blobs);
  const c = client(t);
  await pushCache(c, registry, 'src/a', 'cache', a, blobs);
  await pushCache(c, registry, 'src/b', 'cache', b, blobs);
  const to = `type=registry,ref=${registry.host}/app:cache`;

  const merged = await ociferry([
    'cache',
    'merge',
    '--json',
    '--from',
    `type=registry,ref=${registry.host}/src/a:cache`,
    '--from',
    `type=registry,ref=${registry.host}/src/b:cache`,
    '--to',
    to,
  ]);
  t.is(merged.code, 0, merged.stderr);
  const mergeJson = JSON.parse(merged.stdout);
  t.deepEqual(Object.keys(mergeJson).slice(0, 4), ['digest', 'mediaType', 'blobs', 'requests']);
  t.like(mergeJson.blobs, { mounted: 5, uploaded: 1 });
  t.like(mergeJson.merged, { recordsIn: 6, records: 5 });

  const pruned = await ociferry(['cache', 'prune', '--from', to, '--to', to, '--keep-last', '1']);
  t.is(pruned.code, 0, pruned.stderr);
  t.regex(pruned.stdout, /^sha256:[0-9a-f]{64}\n$/);
  t.regex(pruned.stderr, /kept 3 records, 3 results, 3 layers .*; dropped 2 records, 2 results/);
  t.regex(pruned.stderr, /builds: 1 of 2 kept/);
  t.regex(pruned.stderr, /stay in the registry until its garbage collection runs/);
});

test('cache merge, prune and copy refuse bad sizes, durations and a lone --from (status 2)', async (t) => {
  const cases = [
    [
      'cache',
      'prune',
      '--from',
      'r.example/a:b',
      '--to',
      'type=registry,ref=r.example/a:b',
      '--keep-newer',
      '7',
    ],
    [
      'cache',
      'prune',
      '--from',
      'r.example/a:b',
      '--to',
      'type=registry,ref=r.example/a:b',
      '--max-size',
      '1 parsec',
    ],
    [
      'cache',
      'prune',
      '--from',
      'r.example/a:b',
      '--to',
      'type=registry,ref=r.example/a:b',
      '--keep-last',
      '0',
    ],
    ['cache', 'merge', '--from', 'r.example/a:b', '--to', 'type=registry,ref=r.example/a:c'],
    [
      'cache',
      'merge',
      '--from',
      'r.example/a:b',
      '--from',
      'r.example/a:c',
      '--to',
      'type=registry,ref=r.example/a:d',
      '--max-config-size',
      'big',
    ],
  ];
  cases.push([
    'cache',
    'copy',
    '--from',
    'r.example/a:b',
    '--to',
    'type=registry,ref=r.example/a:c',
    '--max-config-size',
    '1MiBs',
  ]);
  for (const args of cases) {
    const result = await ociferry(args);
    t.is(result.code, 2, args.join(' '));
    t.regex(result.stderr, /^error: /);
  }
});
