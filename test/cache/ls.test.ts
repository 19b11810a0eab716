import test from 'ava';
import { CacheImportCache, listCache } from '../../src/cache/index.ts';
import { fixturePath } from '../helpers/fixtures.ts';
import { writeSampleImages } from './_buildkit.ts';

test('lists an inline cache in build order, with links, results and instructions', async (t) => {
  const dir = await writeSampleImages(t, ['stage-v1']);
  const listing = await listCache(`type=local,src=${dir},tag=stage-v1`, {
    cache: new CacheImportCache(),
  });
  t.is(listing.config.form, 'inline');
  t.is(listing.config.manifestMediaType, 'application/vnd.oci.image.manifest.v1+json');
  t.true(listing.config.size > 0);
  t.is(listing.records.length, 9);
  t.is(listing.layers, 4);
  // Every record comes after the records it links from.
  const seen = new Set<number>();
  for (const record of listing.records) {
    for (const input of record.inputs) t.true(seen.has(input.fromRecord), `${record.record}`);
    seen.add(record.record);
  }
  const named = listing.records
    .filter((record) => !record.source)
    .map((record) => record.createdBy?.replace(/ # buildkit$/, '') ?? 'builder stage');
  t.deepEqual(named, [
    'COPY y.txt /y.txt',
    'builder stage',
    'builder stage',
    'COPY /built /built',
    'RUN /bin/sh -c cat /built /y.txt > /final',
  ]);
  const copyFrom = listing.records.find((record) => record.createdBy?.startsWith('COPY /built'));
  // Input 1 of COPY --from: the builder's last step with a selector, and a content checksum.
  t.deepEqual(
    copyFrom?.inputs.filter((input) => input.input === 1).map((input) => input.selector ?? ''),
    ['sha256:ebf14c0ed24d1f057aa17f9008c8bb61d47b8e0bde2ecea10cfbf63944399e4c', ''],
  );
  t.like(copyFrom?.results[0], { createdAt: '2026-12-03T07:41:24.963124627Z', unlisted: [] });
  t.is(copyFrom?.results[0]?.layers.length, 3);
  const final = listing.records[listing.records.length - 1];
  t.is(final?.results[0]?.bytes, listing.bytes, 'the final result loads every layer');
  t.true((copyFrom?.results[0]?.bytes ?? 0) < listing.bytes);
  t.is(listing.requests, 0);
});

test('lists a registry-form cache with its config blob and layer chains', async (t) => {
  const listing = await listCache(`type=local,src=${fixturePath('cache-manifest')}`, {
    cache: new CacheImportCache(),
  });
  t.is(listing.config.form, 'image-manifest');
  t.is(
    listing.config.digest,
    'sha256:38e254e7accb35b833b28f541f3b90a1ba0774feb35cfdf8dadd482fccdd1b4f',
  );
  t.true(listing.config.size > 0);
  const withResults = listing.records.filter((record) => record.results.length > 0);
  t.true(withResults.length > 0);
  for (const record of withResults) {
    for (const result of record.results) t.is(result.layers.length > 0, true);
  }
  const index = new Map(listing.records.map((record, position) => [record.record, position]));
  for (const record of listing.records) {
    for (const input of record.inputs) {
      t.true((index.get(input.fromRecord) ?? Infinity) < (index.get(record.record) ?? -1));
    }
  }
});
