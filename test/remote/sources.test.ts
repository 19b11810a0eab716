import test from 'ava';
import { SourceIndex } from '../../src/remote/sources.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

test('the mount source is the repository sharing the longest path prefix, never the target', (t) => {
  const sources = new SourceIndex();
  sources.add(digest(1), 'r.example', 'team/a/app');
  sources.add(digest(1), 'r.example', 'other/app');
  sources.add(digest(1), 'r.example', 'team/b/app');
  sources.add(digest(1), 'elsewhere.example', 'team/a/lib');
  t.is(sources.mountSource(digest(1), 'r.example', 'team/a/lib'), 'team/a/app');
  t.is(
    sources.mountSource(digest(1), 'r.example', 'team/c/app'),
    'team/b/app',
    'ties go to the last learnt',
  );
  t.is(sources.mountSource(digest(1), 'r.example', 'team/a/app'), 'team/b/app');
  t.is(sources.mountSource(digest(2), 'r.example', 'team/a/app'), undefined);
  t.deepEqual(sources.repositories(digest(1), 'r.example'), [
    'team/a/app',
    'other/app',
    'team/b/app',
  ]);
});

test('a source index keeps at most its number of digests, forgetting those used longest ago', (t) => {
  const sources = new SourceIndex({ maxDigests: 3 });
  for (let n = 1; n <= 3; n++) sources.add(digest(n), 'r.example', 'app');
  t.is(sources.mountSource(digest(1), 'r.example', 'copy'), 'app', 'digest 1 is used again');
  sources.add(digest(4), 'r.example', 'app');
  t.is(sources.size, 3);
  t.deepEqual(sources.repositories(digest(2), 'r.example'), [], 'digest 2 was used longest ago');
  for (const n of [1, 3, 4]) t.deepEqual(sources.repositories(digest(n), 'r.example'), ['app']);
});

test('a source index keeps at most its number of repositories per digest and host', (t) => {
  const sources = new SourceIndex({ maxRepositories: 2 });
  for (const repository of ['one', 'two', 'three']) sources.add(digest(1), 'r.example', repository);
  sources.add(digest(1), 'r.example', 'two');
  t.deepEqual(sources.repositories(digest(1), 'r.example'), ['two', 'three']);
});

test('the default bound holds however many blobs a long-running process learns', (t) => {
  const sources = new SourceIndex();
  for (let n = 0; n < 60_000; n++) sources.add(digest(n), 'r.example', 'app');
  t.is(sources.size, 50_000);
});

test('merge copies every entry, keeping the order they were used in', (t) => {
  const from = new SourceIndex();
  from.add(digest(1), 'r.example', 'a');
  from.add(digest(2), 'r.example', 'b');
  from.add(digest(1), 'r.example', 'c');
  const into = new SourceIndex({ maxDigests: 1 });
  into.merge(from);
  t.deepEqual(sources(into, 1), ['a', 'c'], 'digest 1, used last, is the one kept');
  t.deepEqual(sources(into, 2), []);
});

function sources(index: SourceIndex, n: number): string[] {
  return index.repositories(digest(n), 'r.example');
}
