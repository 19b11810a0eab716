import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { builtPackage } from '../helpers/package.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

/** What `npm pack` would put in the tarball of a package built as `npm run build` does (no bundle). */
let packed: string[] = [];
let dist = '';

test.before(async () => {
  const dir = await builtPackage();
  dist = path.join(dir, 'dist');
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: dir,
  });
  packed = (JSON.parse(stdout)[0].files as Array<{ path: string }>).map((f) => f.path);
});

test('the build runs the declaration rewrite between tsc and the bundle', async (t) => {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  t.regex(
    pkg.scripts.build,
    /tsc -p tsconfig\.build\.json && node scripts\/dts-specifiers\.mjs &&/,
  );
});

test('the package ships the Apache-2.0 LICENSE it declares and no source maps', async (t) => {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  t.is(pkg.license, 'Apache-2.0');
  const license = await readFile(path.join(ROOT, 'LICENSE'), 'utf8');
  t.regex(license, /^\s*Apache License\s+Version 2\.0, January 2004/);
  t.true(packed.includes('LICENSE'));
  t.true(packed.includes('dist/index.js') && packed.includes('dist/index.d.ts'));
  t.deepEqual(
    packed.filter((file) => file.endsWith('.map')),
    [],
    'maps would point at sources the package does not ship',
  );
  t.deepEqual(
    packed.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts')),
    [],
  );
});

test('declarations import relative modules as .js, each of which has its declaration', async (t) => {
  const declarations = (await readdir(dist, { recursive: true })).filter((f) =>
    f.endsWith('.d.ts'),
  );
  t.true(declarations.length > 50);
  const relative = /(?:\bfrom\s*|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  const wrong: string[] = [];
  for (const file of declarations) {
    const text = await readFile(path.join(dist, file), 'utf8');
    for (const [, specifier = ''] of text.matchAll(relative)) {
      const target = path.join(path.dirname(file), specifier.replace(/\.js$/, '.d.ts'));
      if (!specifier.endsWith('.js') || !declarations.includes(target)) {
        wrong.push(`${file}: ${specifier}`);
      }
    }
  }
  t.deepEqual(wrong, [], 'TypeScript before 5.0 cannot resolve a .ts specifier in a .d.ts');
});
