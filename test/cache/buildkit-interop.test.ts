/**
 * A real BuildKit reads the caches ociferry writes: every step CACHED from an inline cache copied
 * as it is, converted to index form or to a Docker list, and taken through a local layout and back.
 * This BuildKit (Docker 20.10) cannot read the image-manifest form: that miss is pinned too.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { buildkitForTests } from '../helpers/buildkit.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { contextRoot, ociferry, stepName, writeContext } from './_real-buildkit.ts';
import { BLOB_PATH } from './_support.ts';

// Before any test is declared: ava starts the file on the tick after the first declaration.
const { buildkit } = await buildkitForTests(test);
const interop = buildkit ? test.serial : test.skip;

const DOCKERFILE = [
  'FROM {{base}}',
  'COPY a.txt /a.txt',
  'RUN echo one > /one',
  'COPY c.txt /c.txt',
  'RUN cat /a.txt /c.txt /one > /all',
  '',
].join('\n');
const FILES = { Dockerfile: DOCKERFILE, 'a.txt': 'a\n', 'c.txt': 'c\n' };
const STEPS = [
  '[2/5] COPY a.txt /a.txt',
  '[3/5] RUN echo one > /one',
  '[4/5] COPY c.txt /c.txt',
  '[5/5] RUN cat /a.txt /c.txt /one > /all',
];
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const CACHE_CONFIG = 'application/vnd.buildkit.cacheconfig.v0';
/** What dockerd 20.10 logs when it reads an image-manifest-form cache as an inline-cache image. */
const MISMATCH_LOG = 'invalid image with mismatching manifest and config';

let registry: TestRegistry;
let other: TestRegistry;
/** The image built with an inline cache, `HOST/app:inline`. */
let inline: string;
/** Its manifest digest. */
let inlineDigest: string;
let vars: Record<string, string>;
let contexts: { dir: string; remove: () => Promise<void> };

if (buildkit) {
  test.before(async (t) => {
    [registry, other] = await Promise.all([startRegistry(), startRegistry()]);
    contexts = await contextRoot();
    vars = { base: `${registry.host}/base:1` };
    await buildkit.baseImage(vars.base as string);
    await buildkit.wipe();
    inline = `${registry.host}/app:inline`;
    const built = await buildkit.build({
      context: await writeContext(contexts.dir, FILES, vars),
      tag: inline,
    });
    t.deepEqual(built.steps.filter((step) => step.cached).map(stepName), []);
    inlineDigest = await buildkit.push(inline);
  });
  test.after.always(() => Promise.all([registry?.stop(), other?.stop(), contexts?.remove()]));
}

/** Wipe, rebuild the Dockerfile with `--cache-from ref`, and give the names of its CACHED steps. */
async function cachedSteps(t: ExecutionContext, ref: string): Promise<string[]> {
  if (!buildkit) throw new Error('no BuildKit');
  await buildkit.wipe();
  const context = await writeContext(contexts.dir, FILES, vars);
  const rebuilt = await buildkit.build({ context, cacheFrom: [ref] });
  // BuildKit prints vertices as they finish, not in Dockerfile order.
  const steps = rebuilt.steps.filter((step) => step.index >= 2).sort((a, b) => a.index - b.index);
  t.deepEqual(steps.map(stepName), STEPS);
  return steps.filter((step) => step.cached).map(stepName);
}

/** `ociferry cache copy --from FROM --to TO --json`, parsed. */
async function cacheCopy(from: string, to: string): Promise<{ digest: string; mediaType: string }> {
  const run = await ociferry(['cache', 'copy', '--from', from, '--to', to, '--json']);
  return JSON.parse(run.stdout) as { digest: string; mediaType: string };
}

/** The manifest `ref` names, as the registry serves it. */
async function manifest(host: string, repoAndTag: string): Promise<Record<string, unknown>> {
  const [repo, tag] = repoAndTag.split(':') as [string, string];
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(', ') },
  });
  if (!res.ok) throw new Error(`GET ${repoAndTag}: ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Media types of an index's or list's entries. */
function entryTypes(index: Record<string, unknown>): string[] {
  return (index.manifests as { mediaType: string }[]).map((entry) => entry.mediaType);
}

interop('BuildKit builds every step CACHED from the inline cache itself', async (t) => {
  t.deepEqual(await cachedSteps(t, inline), STEPS);
});

interop('BuildKit builds every step CACHED from an inline cache copied as it is', async (t) => {
  const copied = await cacheCopy(
    `type=registry,ref=${inline}`,
    `type=registry,ref=${registry.host}/copies/as-is:1`,
  );
  t.is(copied.digest, inlineDigest);
  t.deepEqual(await cachedSteps(t, `${registry.host}/copies/as-is:1`), STEPS);
});

interop('BuildKit builds every step CACHED from a cache converted to index form', async (t) => {
  const ref = `${registry.host}/copies/index:1`;
  const copied = await cacheCopy(
    `type=registry,ref=${inline}`,
    `type=registry,ref=${ref},image-manifest=false,oci-mediatypes=true`,
  );
  t.is(copied.mediaType, OCI_INDEX);
  const index = await manifest(registry.host, 'copies/index:1');
  t.is(index.mediaType, OCI_INDEX);
  t.is(entryTypes(index).at(-1), CACHE_CONFIG);
  t.deepEqual(await cachedSteps(t, ref), STEPS);
});

interop('BuildKit builds every step CACHED from a cache converted to a Docker list', async (t) => {
  const ref = `${registry.host}/copies/docker-list:1`;
  const copied = await cacheCopy(
    `type=registry,ref=${inline}`,
    `type=registry,ref=${ref},oci-mediatypes=false`,
  );
  t.is(copied.mediaType, DOCKER_LIST);
  const list = await manifest(registry.host, 'copies/docker-list:1');
  t.is(list.mediaType, DOCKER_LIST);
  t.is(entryTypes(list).at(-1), CACHE_CONFIG);
  t.deepEqual(await cachedSteps(t, ref), STEPS);
});

interop(
  'BuildKit builds every step CACHED from an index-form cache copied to another registry',
  async (t) => {
    const index = `${registry.host}/copies/for-other:1`;
    const converted = await cacheCopy(
      `type=registry,ref=${inline}`,
      `type=registry,ref=${index},image-manifest=false,oci-mediatypes=true`,
    );
    const mark = await registry.mark();
    const copied = await cacheCopy(
      `type=registry,ref=${index}`,
      `type=registry,ref=${other.host}/caches/app:1`,
    );
    t.is(copied.digest, converted.digest);
    // Streamed between registries: each layer read once from the source.
    const reads = await registry.requests({ method: 'GET', path: BLOB_PATH, since: mark });
    const paths = reads.map((entry) => entry.path);
    t.is(new Set(paths).size, paths.length);
    t.deepEqual(await cachedSteps(t, `${other.host}/caches/app:1`), STEPS);
  },
);

interop(
  'BuildKit builds every step CACHED from a cache taken through a local layout and back',
  async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-cache-layout-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await cacheCopy(`type=registry,ref=${inline}`, `type=local,dest=${dir}`);
    const layout = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    t.is(layout.manifests.length, 1);
    const ref = `${registry.host}/copies/from-layout:1`;
    await cacheCopy(`type=local,src=${dir}`, `type=registry,ref=${ref}`);
    t.deepEqual(await cachedSteps(t, ref), STEPS);
  },
);

interop(
  'this BuildKit silently rebuilds everything from an image-manifest-form cache',
  async (t) => {
    if (!buildkit) return t.fail();
    const ref = `${registry.host}/copies/image-manifest:1`;
    const copied = await cacheCopy(
      `type=registry,ref=${inline}`,
      `type=registry,ref=${ref},image-manifest=true,oci-mediatypes=true`,
    );
    t.is(copied.mediaType, OCI_MANIFEST);
    const image = await manifest(registry.host, 'copies/image-manifest:1');
    t.is((image.config as { mediaType: string }).mediaType, CACHE_CONFIG);
    const logged = (await buildkit.log()).split(MISMATCH_LOG).length;
    // Docker 20.10's BuildKit predates the image-manifest form (BuildKit v0.12): no step hits, and
    // the build succeeds; dockerd's log is the only trace.
    t.deepEqual(await cachedSteps(t, ref), []);
    t.true(
      (await buildkit.log()).split(MISMATCH_LOG).length > logged,
      'dockerd logged the mismatch',
    );
  },
);
