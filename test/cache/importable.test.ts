import { createHash } from 'node:crypto';
import test from 'ava';
import {
  BUILDKIT_CONFIG_LIMIT,
  type CacheConfig,
  CacheImportCache,
  type CacheRecord,
  checkCache,
  explainCache,
  listCache,
  serializeCacheConfig,
  sortCacheConfig,
} from '../../src/cache/index.ts';
import { startRegistry } from '../helpers/registry.ts';
import { client, pushCustomCache, uploadBytes } from './_support.ts';

const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/** Chains of 50 steps, `count` records in all, each with a result on layer 0. */
function chains(count: number): CacheConfig {
  const records: CacheRecord[] = [];
  for (let i = 0; i < count; i++) {
    records.push({
      digest: sha(`step-${i}`),
      results: [{ layer: 0, createdAt: '2026-12-01T10:00:00Z' }],
      chains: [],
      inputs: i % 50 === 0 ? [] : [[{ link: i - 1 }]],
    });
  }
  return sortCacheConfig({ layers: [{ blob: '', parent: -1 }], records });
}

test('a config over 1 MiB is warned about by ls and check, and left out by explain as BuildKit refuses it', async (t) => {
  const registry = await startRegistry(t);
  const c = client(t);
  const layer = await uploadBytes(c, registry, 'cache/app', Buffer.from('one layer'));
  const push = async (tag: string, count: number) => {
    const config = chains(count);
    const bytes = serializeCacheConfig({
      ...config,
      layers: [{ blob: layer.digest, parent: -1 }],
    });
    await pushCustomCache(c, registry, 'cache/app', tag, bytes, [layer]);
    return { csv: `type=registry,ref=${registry.host}/cache/app:${tag}`, size: bytes.length };
  };
  const big = await push('big', 8000);
  const small = await push('small', 100);
  t.true(big.size > BUILDKIT_CONFIG_LIMIT, `${big.size}`);
  t.true(small.size < BUILDKIT_CONFIG_LIMIT);
  const options = { client: c, cache: new CacheImportCache() };

  const bigListing = await listCache(big.csv, options);
  t.is(bigListing.warnings.length, 1);
  t.regex(bigListing.warnings[0] ?? '', new RegExp(`${big.size} bytes, over the 1048576`));
  t.deepEqual((await listCache(small.csv, options)).warnings, []);

  // check looks record digests up: it still answers, with the warning.
  const key = sha('step-49');
  const checked = await checkCache([big.csv], [key], options);
  t.deepEqual(
    checked.hits.map((hit) => hit.key),
    [key],
  );
  t.true(checked.warnings.some((warning) => warning.includes('over the 1048576')));

  // explain predicts BuildKit (one that reads the image-manifest form these caches have): it
  // imports nothing from the big cache, so nothing is cached.
  const reader = { ...options, readsImageManifest: true };
  const explained = await explainCache(big.csv, [big.csv], reader);
  t.true(explained.warnings.some((warning) => /over the 1048576.*skipped/.test(warning)));
  t.is(explained.cached, 0);
  t.true(explained.total > 0);
  const fromSmall = await explainCache(small.csv, [small.csv], reader);
  t.deepEqual(fromSmall.warnings, []);
  t.true(fromSmall.finalCached);
});
