import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');

test('the README quick-start commands are npm scripts of this package', async (t) => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
  const scripts = [...readme.matchAll(/^npm (?:run )?([a-z-]+)\b/gm)].map((m) => m[1]);
  t.true(scripts.includes('demo') && scripts.includes('test'));
  for (const script of scripts) {
    if (script === 'install' || script === 'pack') continue;
    t.truthy(pkg.scripts[script ?? ''], `npm run ${script} exists`);
  }
});

test('the README library example type-checks against the package API', async (t) => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!example) return t.fail('the README has no TypeScript example');
  const dir = await mkdtemp(path.join(root, '.readme-check-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const source = `export {};\n${example.replaceAll("from 'ociferry'", "from '../src/index.ts'")}`;
  await writeFile(path.join(dir, 'example.ts'), source);
  await writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../tsconfig.json',
      compilerOptions: { noEmit: true, rootDir: '..' },
      // The sources' own declarations of untyped dependencies come along, as in the package build.
      include: ['example.ts', '../src/**/*.d.ts'],
    }),
  );
  const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
  const result = await run(tsc, ['-p', path.join(dir, 'tsconfig.json')]).catch(
    (error: { stdout: string }) => error,
  );
  t.is(result.stdout, '', 'tsc reports nothing');
});
