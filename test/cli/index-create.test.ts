import test from 'ava';
import { pushFixture, readFixtureBlob } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { ociferry } from './support/cli.ts';

const BLOB_GET = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;
/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

async function configDigest(name: string, digest: string): Promise<string> {
  return JSON.parse((await readFixtureBlob(name, digest)).toString()).config.digest;
}

test('index create pushes a manifest list, reading only the configs', async (t) => {
  const registry = await shared(t);
  const amd = await pushFixture(registry, 'docker-image', 'list/amd');
  const arm = await pushFixture(registry, 'docker-image-arm64', 'list/arm');
  const mark = await registry.mark();

  const result = await ociferry([
    'index',
    'create',
    '--json',
    `${registry.host}/list/multi:v1`,
    `${registry.host}/list/amd:v1`,
    `${registry.host}/list/arm:v1`,
  ]);
  t.is(result.code, 0, result.stderr);
  const json = JSON.parse(result.stdout);
  t.deepEqual(Object.keys(json).slice(0, 4), ['digest', 'mediaType', 'blobs', 'requests']);
  t.like(json, {
    mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    blobs: { mounted: amd.blobs.length + arm.blobs.length, uploaded: 0 },
    tags: ['v1'],
  });

  const fetched = (await registry.requests({ method: 'GET', path: BLOB_GET, since: mark })).map(
    (entry) => BLOB_GET.exec(entry.path)?.[1],
  );
  const configs = [
    await configDigest('docker-image', amd.digest),
    await configDigest('docker-image-arm64', arm.digest),
  ];
  t.deepEqual(fetched.sort(), configs.sort(), 'only the configs, for the platforms');

  const inspect = await ociferry(['inspect', '--json', `${registry.host}/list/multi:v1`]);
  const index = JSON.parse(inspect.stdout);
  t.is(index.digest, json.digest);
  t.deepEqual(
    index.manifests.map((m: { digest: string; platform: { architecture: string } }) => [
      m.digest,
      m.platform.architecture,
    ]),
    [
      [amd.digest, 'amd64'],
      [arm.digest, 'arm64'],
    ],
  );
});

test('index create --oci-mediatypes --annotation builds an annotated OCI index', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'docker-image', 'annotated/amd');
  await pushFixture(registry, 'docker-image-arm64', 'annotated/arm');
  const result = await ociferry([
    'index',
    'create',
    '-q',
    '--oci-mediatypes',
    '--annotation',
    'org.opencontainers.image.version=1.2',
    '--annotation',
    'note=a=b',
    `${registry.host}/annotated/multi:v1`,
    `${registry.host}/annotated/amd:v1`,
    `${registry.host}/annotated/arm:v1`,
  ]);
  t.is(result.code, 0, result.stderr);
  const inspect = JSON.parse(
    (await ociferry(['inspect', '--json', `${registry.host}/annotated/multi:v1`])).stdout,
  );
  t.is(inspect.mediaType, 'application/vnd.oci.image.index.v1+json');
  t.deepEqual(inspect.annotations, { 'org.opencontainers.image.version': '1.2', note: 'a=b' });
});

test('index create rejects an annotation without "=" as a usage error', async (t) => {
  const result = await ociferry(['index', 'create', '--annotation', 'novalue', 'h/a:v1', 'h/b:v1']);
  t.is(result.code, 2);
  t.regex(result.stderr, /KEY=VALUE/);
  t.regex(result.stderr, /^hint: run 'ociferry index create --help' for usage$/m);
});

test('index create --annotation of Docker images is a usage error before anything is written', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'docker-image', 'refused/amd');
  await pushFixture(registry, 'docker-image-arm64', 'refused/arm');
  const mark = await registry.mark();
  const result = await ociferry([
    'index',
    'create',
    '--annotation',
    'note=x',
    `${registry.host}/refused/multi:v1`,
    `${registry.host}/refused/amd:v1`,
    `${registry.host}/refused/arm:v1`,
  ]);
  t.is(result.code, 2, result.stderr);
  t.regex(result.stderr, /^error: --annotation needs an OCI index, .*: add --oci-mediatypes$/m);
  t.regex(result.stderr, /^hint: run 'ociferry index create --help' for usage$/m);
  const requests = await registry.requests({ since: mark });
  t.deepEqual(
    requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD'),
    [],
    'no mount, upload or manifest push',
  );
});
