import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import test from 'ava';
import { codeCacheDir } from '../../src/cli/code-cache.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { startRegistry } from '../helpers/registry.ts';
import { builtCli, type CliResult, ociferryProcess, tempDir } from './support/cli.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const VERSION = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version;

/** Run the built bin with the code cache `env` names. */
function runBin(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return ociferryProcess(args, { env: { ...process.env, ...env } });
}

async function cacheFiles(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [])).sort();
}

/** The values (not types) that a source file imports from 'undici'. */
function undiciValues(source: string): string[] {
  const names: string[] = [];
  for (const match of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*'undici'/g)) {
    for (const part of (match[1] as string).split(',')) {
      const name = part.trim();
      if (name && !name.startsWith('type ')) names.push(name.split(/\s+as\s+/)[0] as string);
    }
  }
  return names;
}

test('the CLI bundle provides every value the sources import from undici', async (t) => {
  const files = (await readdir(path.join(ROOT, 'src'), { recursive: true })).filter((file) =>
    file.endsWith('.ts'),
  );
  const imported = new Set<string>();
  for (const file of files) {
    const source = await readFile(path.join(ROOT, 'src', file), 'utf8');
    for (const name of undiciValues(source)) imported.add(name);
  }
  t.true(imported.size > 0, 'the scan found the imports');
  const subset = createRequire(import.meta.url)(path.join(ROOT, 'scripts', 'undici-cli.cjs'));
  for (const name of imported) t.not(subset[name], undefined, `undici-cli.cjs lacks ${name}`);
});

test('the bundled CLI copies within a registry by mounts and across registries by upload', async (t) => {
  const bundled = await readFile(path.join(path.dirname(await builtCli()), 'ociferry.cjs'), 'utf8');
  t.false(
    bundled.includes('lib/web/websocket'),
    'the bundle leaves out the undici it does not use',
  );
  const from = await startRegistry(t);
  // Another host in front of the same registry: to the CLI, another registry.
  const to = await startFaultProxy(t, from.url);
  const pushed = await pushFixture(from, 'multi-platform', 'app/multi');
  const env = { OCIFERRY_CODE_CACHE: await tempDir(t) };

  const within = await runBin(
    ['copy', '--json', `${from.host}/app/multi:v1`, `${from.host}/other/multi:v1`],
    env,
  );
  t.is(within.code, 0, within.stderr);
  t.like(JSON.parse(within.stdout), {
    digest: pushed.digest,
    blobs: { mounted: pushed.blobs.length, uploaded: 0 },
  });

  const across = await runBin(
    ['copy', '--json', `${from.host}/app/multi:v1`, `${to.host}/mirror/multi:v1`],
    env,
  );
  t.is(across.code, 0, across.stderr);
  t.like(JSON.parse(across.stdout), {
    digest: pushed.digest,
    blobs: { uploaded: pushed.blobs.length, mounted: 0 },
  });
});

test('the bin keeps one code cache per command, reuses it, and replaces one V8 refuses', async (t) => {
  const cache = path.join(await tempDir(t), 'code');
  const env = { OCIFERRY_CODE_CACHE: cache };
  const first = await runBin(['--version'], env);
  t.is(first.stdout.trim(), VERSION, first.stderr);
  const [versionCache] = await cacheFiles(cache);
  if (!versionCache) return t.fail('no cache written');
  const written = await readFile(path.join(cache, versionCache));
  t.true(written.length > 100_000, 'the cache holds compiled code');

  t.is((await runBin(['--version'], env)).stdout.trim(), VERSION);
  t.deepEqual(await readFile(path.join(cache, versionCache)), written, 'a good cache is kept');

  const inspect = await runBin(['inspect', 'oci:fixtures/data/oci-image:v1'], env);
  t.is(inspect.code, 0, inspect.stderr);
  t.is((await cacheFiles(cache)).length, 2, 'another command, another cache');
  const failed = await runBin(['tags', 'oci:/nonexistent/layout'], env);
  t.is(failed.code, 1);
  t.is((await cacheFiles(cache)).length, 2, 'a failed run writes no cache');

  await writeFile(path.join(cache, versionCache), 'not V8 code at all');
  t.is((await runBin(['--version'], env)).stdout.trim(), VERSION);
  const replaced = await readFile(path.join(cache, versionCache));
  t.true(replaced.length > 100_000, 'the refused cache was written anew');
});

test('the bin takes no code from a cache directory that others can write', async (t) => {
  const cache = await tempDir(t);
  await chmod(cache, 0o777);
  const result = await runBin(['--version'], { OCIFERRY_CODE_CACHE: cache });
  t.is(result.stdout.trim(), VERSION, result.stderr);
  t.deepEqual(await cacheFiles(cache), []);
});

test('OCIFERRY_CODE_CACHE=0 turns the code cache off', async (t) => {
  const home = await tempDir(t);
  const env = { OCIFERRY_CODE_CACHE: '0', HOME: home, XDG_CACHE_HOME: '' };
  t.is((await runBin(['--version'], env)).stdout.trim(), VERSION);
  t.deepEqual(await cacheFiles(home), []);
  t.is(codeCacheDir(env), undefined);
  t.is(codeCacheDir({ HOME: home }), path.join(home, '.cache', 'ociferry', 'code'));
  t.is(codeCacheDir({ XDG_CACHE_HOME: '/x' }), path.join('/x', 'ociferry', 'code'));
});
