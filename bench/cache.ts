/**
 * Benchmark of the BuildKit cache paths on a generated cache against a real registry on
 * loopback: open + check (config download and stream-parse), a repeated check (in-memory
 * cache), a check in a fresh cache with a warm cacheDir, a full graph walk, and copies (same
 * host as is; mode=min). Reports wall time, requests (from the registry's access log) and RSS.
 * There is no peer tool for cache checks, so there is no ratio: the figures are the result.
 *
 *   node --import tsx bench/cache.ts [--records N] [--layers N] [--keys N]
 *
 * Defaults: 100000 records with 2 links each (200000 links), 64 layers, 1000 keys checked.
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import {
  CACHE_CONFIG_MEDIA_TYPE,
  type CacheConfig,
  CacheGraph,
  CacheImportCache,
  cacheManifest,
  checkCache,
  copyCache,
  openCacheSource,
  serializeCacheConfig,
  sortCacheConfig,
} from '../src/cache/index.ts';
import { digestBytes } from '../src/digest/index.ts';
import type { Descriptor } from '../src/oci/index.ts';
import { CredentialStore, RegistryClient } from '../src/registry/index.ts';
import { BlobLocations } from '../src/remote/blob-locations.ts';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.ts';

const MiB = 1024 * 1024;
const REPO = 'bench/cache';

interface Row {
  phase: string;
  ms: number;
  requests: string;
  rssMiB: number;
  note: string;
}

const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/**
 * A config shaped like a large mode=max export: `records` records, each with one input group
 * linking the two records before it (a ladder: many paths, linear walk), results spread over
 * one parent chain of `layers` layers.
 */
function generateConfig(records: number, layers: readonly string[]): CacheConfig {
  return {
    layers: layers.map((blob, i) => ({ blob, parent: i - 1 })),
    records: Array.from({ length: records }, (_, i) => ({
      digest: sha(`record-${i}`),
      results: [
        {
          layer: i % layers.length,
          createdAt: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString(),
        },
      ],
      chains: [],
      inputs: i < 2 ? [] : [[{ link: i - 1 }, { link: i - 2 }]],
    })),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '100000' },
      layers: { type: 'string', default: '64' },
      keys: { type: 'string', default: '1000' },
    },
  });
  const recordCount = Number(values.records);
  const layerCount = Number(values.layers);
  const keyCount = Number(values.keys);
  const registry = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), 'ociferry-bench-cache-'));
  const client = () =>
    new RegistryClient({ credentials: new CredentialStore({ explicit: {}, env: {} }) });
  const seeder = client();
  const rows: Row[] = [];
  try {
    // Seed: small random layers, the generated config, an image-manifest wrapper.
    const repository = seeder.repository(registry.host, REPO);
    const layers: Descriptor[] = [];
    for (let i = 0; i < layerCount; i++) {
      const bytes = randomBytes(1024);
      const layer = {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: digestBytes(bytes),
        size: bytes.length,
      };
      await repository.uploadBlob(layer, () => Readable.from([bytes]));
      layers.push(layer);
    }
    const config = sortCacheConfig(
      generateConfig(
        recordCount,
        layers.map((l) => l.digest),
      ),
    );
    const bytes = serializeCacheConfig(config);
    const configDesc = {
      mediaType: CACHE_CONFIG_MEDIA_TYPE,
      digest: digestBytes(bytes),
      size: bytes.length,
    };
    await repository.uploadBlob(configDesc, () => Readable.from([bytes]));
    const byBlob = new Map(layers.map((l) => [l.digest, l]));
    const manifest = cacheManifest(
      'image-manifest',
      configDesc,
      config.layers.map((l) => byBlob.get(l.blob) as Descriptor),
    );
    await repository.putManifest('latest', manifest.bytes, manifest.descriptor.mediaType);
    const links = config.records.reduce(
      (sum, r) => sum + r.inputs.reduce((n, g) => n + g.length, 0),
      0,
    );
    console.log(
      `cache: ${recordCount} records, ${links} links, ${layerCount} layers, config ${(bytes.length / MiB).toFixed(1)} MiB`,
    );

    const from = `type=registry,ref=${registry.host}/${REPO}:latest`;
    const limit = 4 * bytes.length;
    const keys = Array.from({ length: keyCount }, (_, i) =>
      sha(`record-${Math.floor((i * recordCount) / keyCount)}`),
    );
    const phase = async (name: string, run: () => Promise<string>) => {
      const mark = await registry.mark();
      const started = performance.now();
      const note = await run();
      const ms = performance.now() - started;
      rows.push({
        phase: name,
        ms,
        requests: await requestSummary(registry, mark),
        rssMiB: process.memoryUsage().rss / MiB,
        note,
      });
    };

    const cacheDir = join(work, 'configs');
    const c1 = client();
    const memory = new CacheImportCache({ maxConfigBytes: 4 * bytes.length });
    await phase('check, cold', async () => {
      const result = await checkCache(from, keys, {
        client: c1,
        cache: memory,
        cacheDir,
        configSizeLimit: limit,
      });
      return `${result.hits.length} hits, ${result.misses.length} misses`;
    });
    await phase('check, repeated (memory)', async () => {
      const result = await checkCache(from, keys, {
        client: c1,
        cache: memory,
        configSizeLimit: limit,
      });
      return `${result.hits.length} hits`;
    });
    await phase('check, new cache + warm cacheDir', async () => {
      const result = await checkCache(from, keys, {
        client: client(),
        cache: new CacheImportCache({ maxConfigBytes: 4 * bytes.length }),
        cacheDir,
        configSizeLimit: limit,
      });
      return `${result.hits.length} hits`;
    });
    const source = await openCacheSource(from, {
      client: c1,
      cache: memory,
      configSizeLimit: limit,
    });
    await phase('graph: build + walk from the last record', async () => {
      const graph = CacheGraph.from(source.config);
      const reached = graph.reachableFrom([sha(`record-${recordCount - 1}`)]);
      return `${reached.records.length} records, ${reached.layers.length} layers reached`;
    });
    await phase('copy as is, same registry', async () => {
      const result = await copyCache(
        from,
        `type=registry,ref=${registry.host}/bench/copy,mode=max`,
        {
          client: c1,
          cache: memory,
          blobLocations: new BlobLocations(),
          configSizeLimit: limit,
        },
      );
      return `${result.blobs.mounted} mounted, ${result.blobs.uploaded} uploaded`;
    });
    await phase('copy mode=min of one key, same registry', async () => {
      const result = await copyCache(source, `type=registry,ref=${registry.host}/bench/min`, {
        client: c1,
        keys: [sha(`record-${Math.floor(recordCount / 2)}`)],
      });
      return `${result.blobs.mounted} mounted, ${result.blobs.uploaded} uploaded (new config)`;
    });
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
  const width = Math.max(...rows.map((r) => r.phase.length));
  for (const row of rows) {
    console.log(
      `${row.phase.padEnd(width)}  ${row.ms.toFixed(0).padStart(7)} ms  rss ${row.rssMiB.toFixed(0).padStart(4)} MiB  ${row.requests.padEnd(40)}  ${row.note}`,
    );
  }
}

/** Requests since `mark` by method and kind: `GET manifest 1, GET blob 1, HEAD blob 64`. */
async function requestSummary(registry: TestRegistry, mark: number): Promise<string> {
  const counts = new Map<string, number>();
  for (const entry of await registry.requests({ since: mark })) {
    const kind = /\/manifests\//.test(entry.path)
      ? 'manifest'
      : /\/blobs\/uploads/.test(entry.path)
        ? 'upload'
        : /\/blobs\//.test(entry.path)
          ? 'blob'
          : 'other';
    const key = `${entry.method} ${kind}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => `${key} ${n}`).join(', ') || 'none';
}

await main();
