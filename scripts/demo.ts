/**
 * `npm run demo`: starts two throwaway local registries (the test helper's real distribution
 * registry), loads the fixture images, and runs ociferry's main jobs against them, printing the
 * figures that matter (requests, blob GETs, mounts, bytes). Stops the registries at the end.
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkCache, copyCache } from '../src/cache/index.ts';
import { buildIndex, copy } from '../src/copy/index.ts';
import { formatPlatform } from '../src/oci/index.ts';
import { RegistryClient } from '../src/registry/index.ts';
import { resolve } from '../src/remote/index.ts';
import { fixturePath, pushFixture } from '../test/helpers/fixtures.ts';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.ts';

const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;

function step(title: string, command: string): void {
  console.log(`\n== ${title}\n   $ ${command}`);
}

function show(label: string, value: unknown): void {
  console.log(`   ${label.padEnd(22)} ${value}`);
}

async function blobGets(registry: TestRegistry, since: number): Promise<number> {
  return (await registry.requests({ method: 'GET', path: BLOB_GET, since })).length;
}

async function main(): Promise<void> {
  console.log('Starting two local registries (CNCF distribution) on 127.0.0.1 ...');
  const local = await startRegistry();
  const other = await startRegistry();
  const client = new RegistryClient();
  try {
    await pushFixture(local, 'multi-platform', 'demo/multi', { dstTag: 'v1' });
    await pushFixture(local, 'layers-40', 'demo/forty', { dstTag: 'v1' });
    await pushFixture(local, 'docker-image', 'demo/amd64', { dstTag: 'v1' });
    await pushFixture(local, 'docker-image-arm64', 'demo/arm64', { dstTag: 'v1' });
    const cache = await pushFixture(local, 'cache-manifest', 'demo/cache', { dstTag: 'latest' });
    console.log(`   registry A: ${local.host}   registry B: ${other.host}`);

    step('inspect an index: the manifest only', `ociferry inspect ${local.host}/demo/multi:v1`);
    let mark = await local.mark();
    const index = await resolve(`${local.host}/demo/multi:v1`, { client });
    show('digest', index.digest);
    show('media type', index.mediaType);
    if (index.kind === 'index') {
      const platforms = index.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '?'));
      show('platforms', platforms.join(', '));
    }
    show('blob GETs', await blobGets(local, mark));

    step(
      'copy within a registry: every blob mounted',
      `ociferry copy ${local.host}/demo/forty:v1 ${local.host}/team/forty:v1`,
    );
    mark = await local.mark();
    const forty = await resolve(`${local.host}/demo/forty:v1`, { client });
    const mounted = await copy(forty, `${local.host}/team/forty:v1`, { client });
    show('mounted / uploaded', `${mounted.blobs.mounted} / ${mounted.blobs.uploaded}`);
    show('bytes downloaded', mounted.blobs.bytesDownloaded);
    show('blob GETs', await blobGets(local, mark));
    show('requests', mounted.requests);

    step(
      'copy across registries: streamed, shared layer once',
      `ociferry copy ${local.host}/demo/multi:v1 ${other.host}/mirror/multi:v1`,
    );
    const mirrored = await copy(index, `${other.host}/mirror/multi:v1`, { client });
    show('uploaded blobs', mirrored.blobs.uploaded);
    show('bytes streamed', mirrored.blobs.bytesUploaded);
    show('digest kept', mirrored.digest === index.digest ? 'yes' : 'NO');

    step(
      'index create from remote images: no layer pulled',
      `ociferry index create ${local.host}/demo/both:v1 ${local.host}/demo/amd64:v1 ${local.host}/demo/arm64:v1`,
    );
    mark = await local.mark();
    const amd = await resolve(`${local.host}/demo/amd64:v1`, { client });
    const arm = await resolve(`${local.host}/demo/arm64:v1`, { client });
    const built = await buildIndex(`${local.host}/demo/both:v1`, [amd, arm], { client });
    show('digest', built.digest);
    show('media type', built.mediaType);
    show('mounted blobs', built.blobs.mounted);
    const layers = [amd, arm].flatMap((r) =>
      r.kind === 'image' ? r.layers.map((l) => l.digest) : [],
    );
    const gets = await local.requests({ method: 'GET', path: BLOB_GET, since: mark });
    show('layer GETs', gets.filter((g) => layers.some((d) => g.path.endsWith(d))).length);

    const keys = JSON.parse(await readFile(fixturePath('cache-keys.json'), 'utf8')) as {
      hits: string[];
      misses: string[];
    };
    const cacheRef = `type=registry,ref=${local.host}/demo/cache:latest`;
    const hit = keys.hits.at(-1) ?? '';
    const miss = keys.misses[0] ?? '';
    step(
      'cache check: is this BuildKit cache a hit?',
      `ociferry cache check --from ${cacheRef} ${hit.slice(0, 19)}… ${miss.slice(0, 19)}…`,
    );
    mark = await local.mark();
    const check = await checkCache(cacheRef, [hit, miss], { client });
    show('hits / misses', `${check.hits.length} / ${check.misses.length}`);
    show('hit chain (layers)', check.hits[0]?.chain.length ?? 0);
    show('layer bytes pulled', check.layerBytesDownloaded);
    show('requests', check.requests);
    const again = await checkCache(cacheRef, [hit, miss], { client });
    show('requests, 2nd check', again.requests);

    step(
      'cache copy to another registry and a local store',
      `ociferry cache copy --from ${cacheRef} --to type=registry,ref=${other.host}/ci/cache,mode=max --to type=local,dest=DIR,mode=max`,
    );
    const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-demo-cache-'));
    try {
      mark = await local.mark();
      const copied = await copyCache(
        cacheRef,
        [
          `type=registry,ref=${other.host}/ci/cache:latest,mode=max`,
          `type=local,dest=${dir},mode=max`,
        ],
        { client },
      );
      show('digest kept', copied.digest === cache.digest ? 'yes' : 'NO');
      show('uploaded / skipped', `${copied.blobs.uploaded} / ${copied.blobs.skipped}`);
      show('source blob GETs', await blobGets(local, mark));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await client.close();
    await Promise.all([local.stop(), other.stop()]);
    console.log('\nRegistries stopped.');
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${(error as Error).message}`);
  process.exitCode = 1;
});
