import test from 'ava';
import { BlobLocations, SourceIndex } from '../../src/remote/blob-locations.ts';
import { remoteContext } from '../../src/remote/context.ts';
import { OciferryContext } from '../../src/remote/ociferry-context.ts';
import type { Provider } from '../../src/remote/provider.ts';
import type { ManifestFetcher } from '../../src/remote/store.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

test('the repository to mount from is the one sharing the longest path prefix, never the target', (t) => {
  const locations = new BlobLocations();
  locations.add(digest(1), 'r.example', 'team/a/app');
  locations.add(digest(1), 'r.example', 'other/app');
  locations.add(digest(1), 'r.example', 'team/b/app');
  locations.add(digest(1), 'elsewhere.example', 'team/a/lib');
  t.is(locations.mountFrom(digest(1), 'r.example', 'team/a/lib'), 'team/a/app');
  t.is(
    locations.mountFrom(digest(1), 'r.example', 'team/c/app'),
    'team/b/app',
    'ties go to the last learnt',
  );
  t.is(locations.mountFrom(digest(1), 'r.example', 'team/a/app'), 'team/b/app');
  t.is(locations.mountFrom(digest(2), 'r.example', 'team/a/app'), undefined);
  t.deepEqual(locations.repositories(digest(1), 'r.example'), [
    'team/a/app',
    'other/app',
    'team/b/app',
  ]);
});

test('blob locations keep at most their number of digests, forgetting those used longest ago', (t) => {
  const locations = new BlobLocations({ maxDigests: 3 });
  for (let n = 1; n <= 3; n++) locations.add(digest(n), 'r.example', 'app');
  t.is(locations.mountFrom(digest(1), 'r.example', 'copy'), 'app', 'digest 1 is used again');
  locations.add(digest(4), 'r.example', 'app');
  t.is(locations.size, 3);
  t.deepEqual(locations.repositories(digest(2), 'r.example'), [], 'digest 2 was used longest ago');
  for (const n of [1, 3, 4]) t.deepEqual(locations.repositories(digest(n), 'r.example'), ['app']);
});

test('blob locations keep at most their number of repositories per digest and host', (t) => {
  const locations = new BlobLocations({ maxRepositories: 2 });
  for (const repository of ['one', 'two', 'three'])
    locations.add(digest(1), 'r.example', repository);
  locations.add(digest(1), 'r.example', 'two');
  t.deepEqual(locations.repositories(digest(1), 'r.example'), ['two', 'three']);
});

test('the default bound holds however many blobs a long-running process learns', (t) => {
  const locations = new BlobLocations();
  for (let n = 0; n < 60_000; n++) locations.add(digest(n), 'r.example', 'app');
  t.is(locations.size, 50_000);
});

test('merge copies every entry, keeping the order they were used in', (t) => {
  const from = new BlobLocations();
  from.add(digest(1), 'r.example', 'a');
  from.add(digest(2), 'r.example', 'b');
  from.add(digest(1), 'r.example', 'c');
  const into = new BlobLocations({ maxDigests: 1 });
  into.merge(from);
  t.deepEqual(repositories(into, 1), ['a', 'c'], 'digest 1, used last, is the one kept');
  t.deepEqual(repositories(into, 2), []);
});

function repositories(locations: BlobLocations, n: number): string[] {
  return locations.repositories(digest(n), 'r.example');
}

test('the names from before BlobLocations still reach the same index', (t) => {
  const index = new SourceIndex({ maxDigests: 1 });
  t.true(index instanceof BlobLocations);
  index.add(digest(1), 'r.example', 'app');
  t.is(index.mountSource(digest(1), 'r.example', 'copy'), 'app');
  t.deepEqual(index.sourcesOf(digest(1)), new Map([['r.example', ['app']]]));
  const context = new OciferryContext({ sources: { maxDigests: 1 } });
  t.is(context.sources, context.blobLocations);
  context.blobLocations.add(digest(1), 'r.example', 'app');
  context.blobLocations.add(digest(2), 'r.example', 'app');
  t.is(context.blobLocations.size, 1, 'the old option still bounds the index');
  const store = {} as Provider & ManifestFetcher;
  t.is(remoteContext(store, 'r.example/app', { context, sources: index }).blobLocations, index);
  t.is(remoteContext(store, 'r.example/app', { context }).blobLocations, context.blobLocations);
});
