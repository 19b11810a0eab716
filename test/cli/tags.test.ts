import test from 'ava';
import { fixturePath, pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { ociferry } from './support/cli.ts';

/** The registry of the tests that count none of its requests. */
const shared = sharedRegistry(test);

test('tags lists every tag of a repository, as lines or JSON', async (t) => {
  const registry = await shared();
  for (const tag of ['v1', 'v2', 'latest']) {
    await pushFixture(registry, 'oci-image', 'app/single', { dstTag: tag });
  }
  const lines = await ociferry(['tags', `${registry.host}/app/single`]);
  t.is(lines.code, 0, lines.stderr);
  t.deepEqual(lines.stdout.trim().split('\n').sort(), ['latest', 'v1', 'v2']);

  const json = await ociferry(['tags', '--json', `${registry.host}/app/single:ignored`]);
  const parsed = JSON.parse(json.stdout);
  t.is(parsed.repository, `${registry.host}/app/single`);
  t.deepEqual(parsed.tags.sort(), ['latest', 'v1', 'v2']);
});

test('tags lists the tags of an oci: layout', async (t) => {
  const result = await ociferry(['tags', `oci:${fixturePath('multi-platform')}`]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, 'v1\n');
});

test('tags of a repository that does not exist fails with a hint about the name', async (t) => {
  const registry = await shared();
  const result = await ociferry(['tags', `${registry.host}/no/such`]);
  t.is(result.code, 1);
  t.regex(result.stderr, /^error: tags .*no\/such: .*404/m);
  t.regex(result.stderr, /^hint: check the repository name/m);
});
