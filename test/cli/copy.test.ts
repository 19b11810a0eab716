import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { pushFixture, readFixtureBlob } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { ociferry, tempDir } from './support/cli.ts';

const run = promisify(execFile);
const BLOB_GET = /^\/v2\/.+\/blobs\//;
const CONTRACT_KEYS = ['digest', 'mediaType', 'blobs', 'requests'];
const BLOB_KEYS = ['mounted', 'skipped', 'uploaded', 'bytesUploaded', 'bytesDownloaded'];
/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

test('copy to an oci: layout writes what skopeo reads and prints the contract JSON', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'multi-platform', 'to-layout/multi');
  const dir = path.join(await tempDir(t), 'layout');

  const result = await ociferry([
    'copy',
    '--json',
    `${registry.host}/to-layout/multi:v1`,
    `oci:${dir}:v1`,
  ]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stderr, '', '--json prints no progress');
  const json = JSON.parse(result.stdout);
  t.deepEqual(Object.keys(json).slice(0, 4), CONTRACT_KEYS);
  t.deepEqual(Object.keys(json.blobs), BLOB_KEYS);
  t.like(json, {
    digest: pushed.digest,
    mediaType: pushed.mediaType,
    blobs: { uploaded: pushed.blobs.length, mounted: 0, skipped: 0 },
  });
  t.true(json.requests > 0);

  const { stdout } = await run('skopeo', ['inspect', '--raw', `oci:${dir}:v1`]);
  t.deepEqual(Buffer.from(stdout), await readFixtureBlob('multi-platform', pushed.digest));
  await run('skopeo', ['inspect', '--override-arch', 'arm64', `oci:${dir}:v1`]);

  const again = await ociferry([
    'copy',
    '--json',
    `${registry.host}/to-layout/multi:v1`,
    `oci:${dir}:v1`,
  ]);
  t.like(JSON.parse(again.stdout), { blobs: { uploaded: 0, skipped: pushed.blobs.length } });
});

test('copy within one registry mounts every blob and reads none', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'oci-image', 'within/single');
  const mark = await registry.mark();
  const result = await ociferry([
    'copy',
    '--progress',
    'plain',
    `${registry.host}/within/single:v1`,
    `${registry.host}/within/other-single:v1`,
  ]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, `${pushed.digest}\n`);
  const mounted = result.stderr.split('\n').filter((line) => line.startsWith('mounted '));
  t.is(mounted.length, pushed.blobs.length);
  t.regex(mounted[0] ?? '', /^mounted sha256:[0-9a-f]{12}… \d+ B from within\/single$/);
  t.regex(result.stderr, /^pushed manifest sha256:[0-9a-f]{12}… as v1 /m);
  t.regex(result.stderr, /^copied .* 0 uploaded \(0 B\), 4 mounted, 0 skipped, \d+ requests in /m);
  t.deepEqual(await registry.requests({ method: 'GET', path: BLOB_GET, since: mark }), []);
});

test('copy --platform copies one image and --tag adds tags', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'multi-platform', 'platform/multi');
  const index = JSON.parse((await readFixtureBlob('multi-platform', pushed.digest)).toString());
  const arm = index.manifests.find(
    (m: { platform: { architecture: string } }) => m.platform.architecture === 'arm64',
  );
  const result = await ociferry([
    'copy',
    '-q',
    '--platform',
    'linux/arm64',
    '--tag',
    'latest',
    '--tag',
    'arm',
    `${registry.host}/platform/multi:v1`,
    `${registry.host}/platform/arm:v1`,
  ]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stderr, '', '-q prints no progress and no summary');
  t.is(result.stdout, `${arm.digest}\n`);
  const tags = await ociferry(['tags', `${registry.host}/platform/arm`]);
  t.deepEqual(tags.stdout.trim().split('\n').sort(), ['arm', 'latest', 'v1']);
});

test('copy refuses an invalid --tag before any request', async (t) => {
  const registry = await shared(t);
  const mark = await registry.mark();
  const result = await ociferry([
    'copy',
    '--tag',
    'bad tag!',
    `${registry.host}/bad-tag/a:v1`,
    `${registry.host}/bad-tag/b:v1`,
  ]);
  t.is(result.code, 2);
  t.regex(result.stderr, /^error: .*bad tag!/m);
  t.deepEqual(await registry.requests({ since: mark }), []);
});

test('copy --platform refuses a single image of another platform and writes nothing', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'oci-image', 'wrong-platform/single');
  const dir = path.join(await tempDir(t), 'layout');
  const mark = await registry.mark();
  const [toRegistry, toLayout] = await Promise.all([
    ociferry([
      'copy',
      '--platform',
      'linux/arm64',
      `${registry.host}/wrong-platform/single:v1`,
      `${registry.host}/wrong-platform/arm:v1`,
    ]),
    ociferry([
      'copy',
      '--platform',
      'linux/arm64',
      `${registry.host}/wrong-platform/single:v1`,
      `oci:${dir}`,
    ]),
  ]);
  for (const result of [toRegistry, toLayout]) {
    t.is(result.code, 1);
    t.regex(
      result.stderr,
      /^error: copy .*: .*wrong-platform\/single:v1 is a single-platform image for linux\/amd64, not linux\/arm64$/m,
    );
  }
  const writes = (await registry.requests({ since: mark })).filter(
    (r) => r.method !== 'GET' && r.method !== 'HEAD',
  );
  t.deepEqual(writes, [], 'nothing was sent to the destination');
  t.deepEqual(await readdir(path.dirname(dir)), [], 'no layout was created');
});

test('copy to a destination @digest the copy cannot produce fails before writing, blaming the digest', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'oci-image', 'wrong-digest/single');
  const wrong = `sha256:${'0'.repeat(64)}`;
  const mark = await registry.mark();
  const result = await ociferry([
    'copy',
    `${registry.host}/wrong-digest/single:v1`,
    `${registry.host}/wrong-digest/copy@${wrong}`,
  ]);
  t.is(result.code, 1);
  t.regex(
    result.stderr,
    new RegExp(`^error: copy .*: .*names ${wrong}, but the source is ${pushed.digest} `, 'm'),
  );
  t.regex(result.stderr, /^hint: nothing was written: a destination @digest must be the digest/m);
  const writes = (await registry.requests({ since: mark })).filter(
    (r) => r.method !== 'GET' && r.method !== 'HEAD',
  );
  t.deepEqual(writes, []);
});
