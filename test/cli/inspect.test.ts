import test from 'ava';
import { fixturePath, fixtureRoot, pushFixture, readFixtureBlob } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { ociferry } from './support/cli.ts';

/** The registry of every test here: the one that counts requests does so through its view, in repositories of its own. */
const shared = sharedRegistry(test);

const BLOB_GET = /^\/v2\/.+\/blobs\//;

test('inspect of an index and of an image reads manifests only: zero blob GETs', async (t) => {
  const registry = await shared(t);
  const multi = await pushFixture(registry, 'multi-platform', 'counted/multi');
  const single = await pushFixture(registry, 'oci-image', 'counted/single');
  const mark = await registry.mark();

  const index = await ociferry(['inspect', `${registry.host}/counted/multi:v1`]);
  t.is(index.code, 0, index.stderr);
  t.regex(index.stdout, new RegExp(`^Digest +${multi.digest}$`, 'm'));
  t.regex(index.stdout, /^Manifests +2$/m);
  t.regex(index.stdout, /linux\/amd64/);
  t.regex(index.stdout, /linux\/arm64\/v8/);

  const image = await ociferry(['inspect', '--json', `${registry.host}/counted/single:v1`]);
  t.is(image.code, 0, image.stderr);
  const json = JSON.parse(image.stdout);
  t.like(json, { kind: 'image', digest: single.digest, mediaType: single.mediaType });
  t.is(json.layers.length, 3);
  t.is(json.config.digest, single.blobs[0]);
  t.false('platform' in json, 'no config fetch just for the platform');

  const arm = await ociferry([
    'inspect',
    '--json',
    '--platform',
    'linux/arm64',
    `${registry.host}/counted/multi:v1`,
  ]);
  t.is(arm.code, 0, arm.stderr);
  t.like(JSON.parse(arm.stdout), { kind: 'image', platform: { architecture: 'arm64' } });

  t.deepEqual(await registry.requests({ method: 'GET', path: BLOB_GET, since: mark }), []);
  t.is(
    await registry
      .requests({ method: 'GET', path: /\/manifests\//, since: mark })
      .then((r) => r.length),
    4,
  );
});

test('inspect --raw prints the manifest bytes exactly as stored', async (t) => {
  const registry = await shared();
  const multi = await pushFixture(registry, 'multi-platform', 'app/multi');
  const single = await pushFixture(registry, 'oci-image', 'app/single');
  for (const [ref, name, digest] of [
    [`${registry.host}/app/multi:v1`, 'multi-platform', multi.digest],
    [`${registry.host}/app/single@${single.digest}`, 'oci-image', single.digest],
  ] as const) {
    const raw = await ociferry(['inspect', '--raw', ref]);
    t.is(raw.code, 0, raw.stderr);
    t.deepEqual(raw.stdoutBytes, await readFixtureBlob(name, digest));
  }
  const child = JSON.parse((await readFixtureBlob('multi-platform', multi.digest)).toString())
    .manifests[0];
  const selected = await ociferry([
    'inspect',
    '--raw',
    '--platform',
    'linux/amd64',
    `${registry.host}/app/multi:v1`,
  ]);
  t.deepEqual(selected.stdoutBytes, await readFixtureBlob('multi-platform', child.digest));
});

test('inspect reads an oci: layout directory', async (t) => {
  const root = await fixtureRoot('docker-image', 'v1');
  const result = await ociferry(['inspect', '--json', `oci:${fixturePath('docker-image')}:v1`]);
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout), { kind: 'image', digest: root.digest, size: root.size });
});

test('inspect --platform names the available platforms when none matches', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'multi-platform', 'app/multi');
  const result = await ociferry([
    'inspect',
    '--platform',
    'windows/amd64',
    `${registry.host}/app/multi:v1`,
  ]);
  t.is(result.code, 1);
  const [error, hint, ...rest] = result.stderr.trimEnd().split('\n');
  t.regex(
    error ?? '',
    /^error: inspect .*: .*has no image for windows\/amd64 \(available: linux\/amd64, linux\/arm64\/v8\)$/,
  );
  t.regex(hint ?? '', /^hint: .*--platform/);
  t.deepEqual(rest, []);
});

test('inspect --platform refuses a single image of another platform, naming its platform', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'app/single');
  const ref = `${registry.host}/app/single:v1`;
  const [wrong, right] = await Promise.all([
    ociferry(['inspect', '--platform', 'linux/arm64', ref]),
    ociferry(['inspect', '--platform', 'linux/amd64', ref]),
  ]);
  t.is(wrong.code, 1);
  t.regex(
    wrong.stderr,
    /^error: inspect .*: .* is a single-platform image for linux\/amd64, not linux\/arm64$/m,
  );
  t.is(wrong.stdout, '');
  t.is(right.code, 0, right.stderr);
  t.regex(right.stdout, /^Reference /m);
});
