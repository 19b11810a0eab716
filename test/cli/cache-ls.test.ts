import test from 'ava';
import { fixturePath, pushFixture } from '../helpers/fixtures.ts';
import { startRegistry } from '../helpers/registry.ts';
import { ociferry } from './support/cli.ts';

const BLOB_GET = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;

test('cache ls --json lists the records, their links and results, reading the config only', async (t) => {
  const registry = await startRegistry(t);
  const pushed = await pushFixture(registry, 'cache-index', 'cache/app');
  const mark = await registry.mark();
  const run = await ociferry(['cache', 'ls', '--json', `${registry.host}/cache/app:latest`]);
  t.is(run.code, 0, run.stderr);
  const listing = JSON.parse(run.stdout);
  t.is(listing.cache, `type=registry,ref=${registry.host}/cache/app:latest`);
  t.like(listing.config, {
    form: 'index',
    manifestMediaType: 'application/vnd.oci.image.index.v1+json',
  });
  t.true(listing.records.length > 0);
  const position = new Map<number, number>(
    listing.records.map((record: { record: number }, i: number) => [record.record, i]),
  );
  for (const record of listing.records) {
    for (const input of record.inputs) {
      t.true(position.get(input.fromRecord)! < position.get(record.record)!, 'build order');
    }
  }
  const gets = await registry.requests({ method: 'GET', path: BLOB_GET, since: mark });
  t.deepEqual(
    gets.map((entry) => BLOB_GET.exec(entry.path)?.[1]),
    [listing.config.digest],
  );
  t.not(pushed.digest, listing.config.digest);
});

test('cache ls prints the form, then each record with its inputs and results', async (t) => {
  const run = await ociferry(['cache', 'ls', `type=local,src=${fixturePath('cache-manifest')}`]);
  t.is(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.regex(
    lines[0] ?? '',
    /: image-manifest \(config sha256:38e254e7accb…, .+\), \d+ records, \d+ layers \(.+\)$/,
  );
  t.true(lines.some((line) => /^#\d+ sha256:[0-9a-f]{64}/.test(line)));
  t.true(lines.some((line) => /^ {4}input \d+ <- #\d+ sha256:[0-9a-f]{12}…/.test(line)));
  t.true(lines.some((line) => /^ {4}result \S+: \d+ layers? \(.+\)$/.test(line)));
});
