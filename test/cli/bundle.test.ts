import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { pushFixture } from '../helpers/fixtures.ts';
import { startRegistry } from '../helpers/registry.ts';
import { ociferry, tempDir } from './support/cli.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

/** Bundle the CLI as `npm run build` does, laid out as installed (dist/cli next to package.json). */
async function bundle(dir: string): Promise<string> {
  const main = path.join(dir, 'dist', 'cli', 'main.js');
  await mkdir(path.dirname(main), { recursive: true });
  await copyFile(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  await run(process.execPath, [path.join(ROOT, 'scripts', 'bundle-cli.mjs'), main]);
  return main;
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
  const main = await bundle(await tempDir(t));
  const bundled = await readFile(main, 'utf8');
  t.false(
    bundled.includes('lib/web/websocket'),
    'the bundle leaves out the undici it does not use',
  );
  const from = await startRegistry(t);
  const to = await startRegistry(t);
  const pushed = await pushFixture(from, 'multi-platform', 'app/multi');

  const within = await ociferry(
    ['copy', '--json', `${from.host}/app/multi:v1`, `${from.host}/other/multi:v1`],
    { bundle: main },
  );
  t.is(within.code, 0, within.stderr);
  t.like(JSON.parse(within.stdout), {
    digest: pushed.digest,
    blobs: { mounted: pushed.blobs.length, uploaded: 0 },
  });

  const across = await ociferry(
    ['copy', '--json', `${from.host}/app/multi:v1`, `${to.host}/mirror/multi:v1`],
    { bundle: main },
  );
  t.is(across.code, 0, across.stderr);
  t.like(JSON.parse(across.stdout), {
    digest: pushed.digest,
    blobs: { uploaded: pushed.blobs.length, mounted: 0 },
  });
  const version = await ociferry(['--version'], { bundle: main });
  t.is(
    version.stdout.trim(),
    JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version,
  );
});
