import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { Descriptor } from '../../src/oci/index.ts';
import { CredentialStore, RegistryClient } from '../../src/registry/index.ts';
import { pushCustomCache } from '../cache/_support.ts';
import { fixturePath, pushFixture, readFixtureBlob } from '../helpers/fixtures.ts';
import { sharedRegistry, startRegistry } from '../helpers/registry.ts';
import { startTlsFront } from '../registry/_tls-front.ts';
import { ociferry, tempDir } from './support/cli.ts';

const BLOB_GET = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;
/** The registry of the tests that need none of their own; each test has repositories of its own. */
const shared = sharedRegistry(test);

interface CacheKeys {
  hits: string[];
  misses: string[];
  chains: Record<string, string[]>;
}

async function cacheKeys(): Promise<CacheKeys> {
  return JSON.parse(await readFile(fixturePath('cache-keys.json'), 'utf8'));
}

test('cache check reports hits and misses, reading the cache config but no layer', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'cache-manifest', 'check/cache/app');
  const config = JSON.parse((await readFixtureBlob('cache-manifest', pushed.digest)).toString())
    .config.digest;
  const keys = await cacheKeys();
  const [hit = '', miss = ''] = [keys.hits[2], keys.misses[0]];
  const from = `type=registry,ref=${registry.host}/check/cache/app:latest`;
  const mark = await registry.mark();

  const json = await ociferry(['cache', 'check', '--json', '--from', from, hit, miss]);
  t.is(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout);
  t.deepEqual(Object.keys(result).slice(0, 4), [
    'hits',
    'misses',
    'layerBytesDownloaded',
    'requests',
  ]);
  t.is(result.lookup, 'record-digest');
  t.regex(result.meaning, /not BuildKit's decision/);
  t.is(result.layerBytesDownloaded, 0);
  t.deepEqual(result.misses, [miss]);
  t.is(result.hits.length, 1);
  t.like(result.hits[0], { key: hit, source: from });
  t.deepEqual(
    result.hits[0].chain.map((blob: { digest: string; exists: boolean }) => [
      blob.digest,
      blob.exists,
    ]),
    (keys.chains[hit] ?? []).map((digest) => [digest, true]),
  );
  const fetched = (await registry.requests({ method: 'GET', path: BLOB_GET, since: mark })).map(
    (entry) => BLOB_GET.exec(entry.path)?.[1],
  );
  t.deepEqual(fetched, [config], 'the cache config only');

  const text = await ociferry(['cache', 'check', '--from', from, hit, miss]);
  t.is(text.code, 0, text.stderr);
  const [hitLine, missLine] = text.stdout.trimEnd().split('\n');
  t.regex(
    hitLine ?? '',
    new RegExp(`^hit  ${hit} ${from} created \\S+, 3 layers \\(.+\\), all present$`),
  );
  t.is(missLine, `miss ${miss}`);
});

test('cache copy writes a local store and a registry, printing the contract JSON', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'cache-manifest', 'copy/cache/app');
  const dir = path.join(await tempDir(t), 'cache');
  const result = await ociferry([
    'cache',
    'copy',
    '--json',
    '--from',
    `${registry.host}/copy/cache/app:latest`,
    '--to',
    `type=local,dest=${dir}`,
    '--to',
    `type=registry,ref=${registry.host}/copy/cache/copy:latest`,
    '--to',
    `type=registry,ref=${registry.host}/copy/cache/index:latest,image-manifest=false`,
  ]);
  t.is(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  t.deepEqual(Object.keys(json), [
    ...['digest', 'mediaType', 'blobs', 'requests', 'size', 'tags'],
    ...['source', 'sourceFormat', 'destinations', 'warnings'],
  ]);
  t.is(json.digest, pushed.digest, 'a copy as is keeps the manifest');
  t.is(json.sourceFormat, 'image-manifest');
  t.is(json.blobs.mounted, 2 * pushed.blobs.length, 'the registry copies mount every blob');
  t.is(json.blobs.uploaded, pushed.blobs.length, 'the local copy writes every blob');
  t.is(json.blobs.bytesDownloaded, json.blobs.bytesUploaded, 'what the local copy wrote');
  t.deepEqual(
    json.destinations.map((d: Record<string, unknown>) => [
      d.status,
      d.target,
      d.format,
      d.converted,
    ]),
    [
      ['exported', `type=local,dest=${dir},tag=latest`, 'image-manifest', null],
      [
        'exported',
        `type=registry,ref=${registry.host}/copy/cache/copy:latest`,
        'image-manifest',
        null,
      ],
      [
        'exported',
        `type=registry,ref=${registry.host}/copy/cache/index:latest`,
        'index',
        { form: 'index' },
      ],
    ],
  );
  const local = await ociferry(['inspect', '--raw', `oci:${dir}:latest`]);
  t.deepEqual(local.stdoutBytes, await readFixtureBlob('cache-manifest', pushed.digest));

  const text = await ociferry([
    ...['cache', 'copy', '--from', `${registry.host}/copy/cache/app:latest`],
    ...['--to', `type=registry,ref=${registry.host}/copy/cache/again`],
    ...['--to', `type=registry,ref=${registry.host}/copy/cache/min,mode=min,oci-mediatypes=false`],
  ]);
  t.is(text.code, 0, text.stderr);
  t.is(text.stdout, `${pushed.digest}\n`);
  t.regex(
    text.stderr,
    /^exported to type=registry,ref=.*\/cache\/again:latest: sha256:\S+ \(as is, image-manifest\)$/m,
  );
  t.regex(
    text.stderr,
    /^exported to type=registry,ref=.*\/cache\/min:latest: sha256:\S+ \(converted: mode=min, image-manifest -> manifest-list\)$/m,
  );
});

test('a malformed or missing --from is skipped with a warning, as BuildKit skips a failed import', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'cache-manifest', 'skipped/cache/app');
  const [hit = ''] = (await cacheKeys()).hits;
  const c = new RegistryClient({ credentials: new CredentialStore({ explicit: {}, env: {} }) });
  t.teardown(() => c.close());
  const layers = JSON.parse((await readFixtureBlob('cache-manifest', pushed.digest)).toString())
    .layers as Descriptor[];
  const looping = await readFile(fixturePath('cacheconfig/loop-records.json'));
  await pushCustomCache(c, registry, 'skipped/cache/app', 'bad', looping, layers);
  const good = `${registry.host}/skipped/cache/app:latest`;
  const bad = `type=registry,ref=${registry.host}/skipped/cache/app:bad`;
  const absent = `${registry.host}/skipped/cache/absent:latest`;

  const check = await ociferry([
    ...['cache', 'check', '--from', bad, '--from', good, '--from', absent, hit],
  ]);
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, new RegExp(`^hit  ${hit} `));
  t.regex(
    check.stderr,
    /^warning: invalid cache config: config sha256:\S+ of type=registry,ref=.*cache\/app:bad: .*looping records.*; skipped$/m,
  );
  t.regex(check.stderr, /^warning: no cache at .*cache\/absent:latest: .*; skipped$/m);

  // Only malformed sources: every key misses, still no error.
  const none = await ociferry(['cache', 'check', '--json', '--from', bad, hit]);
  t.is(none.code, 0, none.stderr);
  t.like(JSON.parse(none.stdout), { hits: [], misses: [hit] });

  // A copy has one source: when it cannot be read, the copy fails and says why.
  const copy = await ociferry([
    ...[
      'cache',
      'copy',
      '--from',
      bad,
      '--to',
      `type=registry,ref=${registry.host}/skipped/x-y,mode=min`,
    ],
  ]);
  t.is(copy.code, 1);
  t.regex(
    copy.stderr,
    /invalid cache config: config sha256:\S+ of .*cache\/app:bad: .*looping records/,
  );
});

test('cache help says which registries need --plain-http, that registry.insecure is per registry, and which form whom', async (t) => {
  const [cache, copy] = await Promise.all([
    ociferry(['cache', '--help']),
    ociferry(['cache', 'copy', '--help']),
  ]);
  for (const help of [cache, copy]) {
    t.is(help.code, 0, help.stderr);
    const text = help.stdout.replace(/\s+/g, ' ');
    t.regex(
      text,
      /registry\.insecure=true .* skips TLS certificate verification for that registry only/,
    );
    t.regex(text, /Loopback registries .* are reached over HTTPS or plain HTTP automatically/);
    t.regex(text, /any other plain-HTTP registry needs --plain-http/);
    t.notRegex(text, /applies to every registry/);
  }
  const text = copy.stdout.replace(/\s+/g, ' ');
  t.regex(
    text,
    /image-manifest .* BuildKit v0\.12 and later, Harbor\. Not BuildKit before v0\.12 \(Docker Engine 20\.10\)/,
  );
  t.regex(text, /index .* every BuildKit version\. Not Harbor/);
  t.regex(text, /Without mode=, image-manifest= or oci-mediatypes= the cache is copied as it is/);
});

test('cache commands refuse bad input as usage errors', async (t) => {
  const [noFrom, badKey, badCsv] = await Promise.all([
    ociferry(['cache', 'check', `sha256:${'a'.repeat(64)}`]),
    ociferry(['cache', 'check', '--from', 'registry.example/cache', 'not-a-digest']),
    ociferry(['cache', 'copy', '--from', 'type=s3,bucket=x', '--to', 'type=local,dest=x']),
  ]);
  t.is(noFrom.code, 2);
  t.regex(noFrom.stderr, /required option '--from <csv>' not specified/);
  t.is(badKey.code, 2);
  t.regex(badKey.stderr, /not-a-digest/);
  t.is(badCsv.code, 2);
  t.regex(badCsv.stderr, /s3/);
});

test('cache warnings go to stderr as warning lines, not with -q, and stay in --json', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'warnings/cache/app');
  const [hit = ''] = (await cacheKeys()).hits;
  const from = ['--from', `${registry.host}/warnings/cache/app:latest`];
  const absent = ['--from', `${registry.host}/warnings/cache/absent:latest`];
  const warning = /^warning: no cache at .*cache\/absent:latest: .*; skipped$/m;

  const text = await ociferry(['cache', 'check', ...from, ...absent, hit]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stderr, warning);
  t.regex(text.stdout, new RegExp(`^hit  ${hit} `));

  const quiet = await ociferry(['-q', 'cache', 'check', ...from, ...absent, hit]);
  t.is(quiet.code, 0, quiet.stderr);
  t.is(quiet.stderr, '');

  const json = await ociferry(['--json', 'cache', 'check', ...from, ...absent, hit]);
  t.is(json.code, 0, json.stderr);
  const [jsonWarning] = JSON.parse(json.stdout).warnings;
  t.regex(`warning: ${jsonWarning}`, warning);

  const unknownKey = `sha256:${'e'.repeat(64)}`;
  const copyArgs = [
    ...['cache', 'copy', ...from, '--to', `type=registry,ref=${registry.host}/warnings/cache/min`],
    ...['--key', hit, '--key', unknownKey],
  ];
  const copy = await ociferry(copyArgs);
  t.is(copy.code, 0, copy.stderr);
  t.regex(
    copy.stderr,
    new RegExp(`^warning: key ${unknownKey} is not in .*; nothing kept for it$`, 'm'),
  );
  const copyJson = await ociferry(['--json', ...copyArgs]);
  t.is(copyJson.code, 0, copyJson.stderr);
  t.deepEqual(
    JSON.parse(copyJson.stdout).warnings.filter((w: string) => w.includes(unknownKey)).length,
    1,
  );
});

test('registry.insecure=true in --from or --to skips TLS verification of that registry only, and says so', async (t) => {
  // Uploads must follow relative Locations: the registry behind the TLS front sees plain HTTP.
  const registry = await startRegistry(t, { relativeUrls: true });
  await pushFixture(registry, 'cache-manifest', 'cache/app');
  const [hit = ''] = (await cacheKeys()).hits;
  // 0.0.0.0 reaches the loopback TLS front but is not a loopback name: the client speaks https.
  const tls = `0.0.0.0:${(await startTlsFront(t, registry.host)).split(':')[1]}`;
  const { HTTP_PROXY: _a, HTTPS_PROXY: _b, http_proxy: _c, https_proxy: _d, ...env } = process.env;
  const ref = `type=registry,ref=${tls}/cache/app:latest`;

  const verified = await ociferry(['cache', 'check', '--from', ref, hit], { env });
  t.is(verified.code, 1, verified.stderr);
  t.regex(verified.stderr, /^hint: the TLS connection to .* failed: use --insecure/m);

  const check = await ociferry(['cache', 'check', '--from', `${ref},registry.insecure=true`, hit], {
    env,
  });
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, new RegExp(`^hit  ${hit} `));
  t.regex(
    check.stderr,
    new RegExp(
      `^warning: registry.insecure=true: TLS certificates of ${tls} are not verified$`,
      'm',
    ),
  );

  // Only that registry: another TLS registry of the same run is still verified.
  const other = `0.0.0.0:${(await startTlsFront(t, registry.host)).split(':')[1]}`;
  const strict = await ociferry(
    [
      ...['cache', 'copy', '--from', `${ref},registry.insecure=true`],
      ...['--to', `type=registry,ref=${other}/cache/strict,mode=max`],
    ],
    { env },
  );
  t.is(strict.code, 1, strict.stderr);
  t.regex(strict.stderr, new RegExp(`TLS connection to ${other.replace('.', '\\.')}.* failed`));

  const copy = await ociferry(
    [
      ...['cache', 'copy', '--from', `${registry.host}/cache/app:latest`],
      ...['--to', `type=registry,ref=${tls}/cache/copy,mode=max,registry.insecure=true`],
    ],
    { env },
  );
  t.is(copy.code, 0, copy.stderr);
  const copied = await ociferry(['inspect', '--raw', `${registry.host}/cache/copy:latest`]);
  t.is(copied.code, 0, copied.stderr);
});
