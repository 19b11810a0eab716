/**
 * The oracle through the cache service: a BuildKit inline cache is copied to the service, from
 * there to a registry cache in index form (what BuildKit before v0.12 reads), and a real BuildKit
 * rebuilding after a wipe finds every step CACHED there.
 */
import test from 'ava';
import { CacheImportCache, copyCache } from '../../src/cache/index.ts';
import { BlobLocations } from '../../src/remote/blob-locations.ts';
import type { RequestLogLine } from '../../src/service/server.ts';
import { buildkitForTests } from '../helpers/buildkit.ts';
import { startRegistry } from '../helpers/registry.ts';
import { startService, TOKENS } from '../service/_support.ts';
import { contextRoot, stepName, writeContext } from './_real-buildkit.ts';
import { client } from './_support.ts';

// Before any test is declared: ava starts the file on the tick after the first declaration.
const { buildkit } = await buildkitForTests(test);
const oracle = buildkit ? test.serial : test.skip;

oracle(
  'a BuildKit inline cache through the service to an index-form registry cache: BuildKit rebuilds every step CACHED',
  async (t) => {
    if (!buildkit) return t.fail();
    const log: RequestLogLine[] = [];
    const [registry, svc, contexts] = await Promise.all([
      startRegistry(t),
      startService(t, 'pglite', { log: (line) => log.push(line) }),
      contextRoot(),
    ]);
    t.teardown(contexts.remove);
    if (!svc) return t.fail();
    const variable = `OCIFERRY_TEST_TOKEN_${process.pid}_oracle`;
    process.env[variable] = TOKENS.a;
    t.teardown(() => {
      delete process.env[variable];
    });
    const service = `type=service,url=${svc.server.url},token-env=${variable}`;
    const base = `${registry.host}/base:1`;
    await buildkit.baseImage(base);
    const context = await writeContext(
      contexts.dir,
      {
        Dockerfile: `FROM ${base}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /one\nRUN echo two > /two\n`,
        'a.txt': 'a\n',
      },
      {},
    );
    const image = `${registry.host}/app/image:v1`;
    await buildkit.wipe();
    await buildkit.build({ context, tag: image });
    await buildkit.push(image);

    const options = () => ({
      client: client(t),
      cache: new CacheImportCache(),
      blobLocations: new BlobLocations(),
    });
    const up = await copyCache(`type=registry,ref=${image}`, service, options());
    t.like(up.destinations[0], { status: 'exported' });
    const since = log.length;
    const cache = `${registry.host}/app/cache:latest`;
    const down = await copyCache(
      service,
      `type=registry,ref=${cache},image-manifest=false`,
      options(),
    );
    t.like(down.destinations[0], { status: 'exported', format: 'index' });
    const layers = down.blobs.uploaded - 1; // the config is written from memory
    t.is(log.slice(since).filter((line) => line.path === '/v1/layer-download-url').length, layers);

    await buildkit.wipe();
    const rebuild = await buildkit.build({ context, cacheFrom: [cache], inlineCache: false });
    const steps = rebuild.steps.filter((step) => step.index >= 2);
    t.is(steps.length, 3, rebuild.output);
    t.deepEqual(
      steps.filter((step) => !step.cached).map(stepName),
      [],
      `BuildKit ran steps the service's cache holds:\n${rebuild.output}`,
    );
  },
);
