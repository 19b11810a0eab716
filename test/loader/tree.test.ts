import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
// @ts-expect-error: plain JavaScript without declarations.
import { javascript } from './javascript.mjs';
// @ts-expect-error: plain JavaScript without declarations.
import { RELATIVE_SPECIFIER, TREE_ENV, treeModule, treePath } from './tree.mjs';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const tree = (): string => {
  const dir = process.env[TREE_ENV];
  if (!dir) throw new Error(`${TREE_ENV} is not set`);
  return dir;
};

test('each relative import in esbuild output names the tree module or, for other files, the file itself', async (t) => {
  const file = path.join(ROOT, 'test', 'loader', 'sample-not-on-disk.ts');
  const source = [
    "import { a } from './a.ts';",
    'import {',
    '  b1,',
    '  b2,',
    "} from '../b.ts';",
    "import * as c from './c.ts';",
    "import './d.ts';",
    "import pkg from 'undici';",
    "import hooks from './hooks.mjs';",
    "export * from './e.ts';",
    "export { f } from './f.ts';",
    "export const g = () => import('./g.ts');",
    'export const text = "import { x } from \'./x.ts\';";',
    'export const all = [a, b1, b2, c, pkg, hooks];',
  ].join('\n');
  const code: string = await javascript(file, source);
  // esbuild keeps an import written over several lines so: the form `} from "…"` is exercised.
  t.regex(code, /^\} from "\.\.\/b\.ts";$/m);
  const rewritten: string = treeModule(code, file);
  for (const specifier of ['./a', '../b', './c', './d', './e', './f', './g']) {
    t.true(rewritten.includes(`"${specifier}.mjs"`), specifier);
  }
  t.true(
    rewritten.includes(`"${pathToFileURL(path.join(ROOT, 'test', 'loader', 'hooks.mjs')).href}"`),
  );
  t.true(rewritten.includes('from "undici"'));
  // A string that reads like an import is data, not an import.
  t.true(rewritten.includes("import { x } from './x.ts';"));
  t.false(/"\.{1,2}\/[^"]*\.ts"/.test(rewritten.replace(/\/\/# sourceMappingURL=.*/, '')));
});

test("the run's tree holds every TypeScript file of src and test, and each relative import in it names a file that exists", async (t) => {
  const files = (
    await Promise.all(
      ['src', 'test'].map(async (dir) =>
        (
          await readdir(path.join(ROOT, dir), { recursive: true })
        )
          // test/.groups holds what ava runs for groups of test files (groups.mjs).
          .filter((name) => name.endsWith('.ts') && !name.startsWith('.groups'))
          .map((name) => path.join(ROOT, dir, name)),
      ),
    )
  ).flat();
  t.true(files.length > 100);
  let imports = 0;
  for (const file of files) {
    const module = treePath(tree(), file);
    const code = await readFile(module, 'utf8');
    for (const [, , specifier = ''] of code.matchAll(RELATIVE_SPECIFIER)) {
      imports += 1;
      t.true(existsSync(path.resolve(path.dirname(module), specifier)), `${file}: ${specifier}`);
    }
  }
  t.true(imports > files.length);
});

test("plain node loads the library from the tree, and import.meta is the TypeScript file's own", async (t) => {
  const script = [
    `const { packageVersion } = await import(${JSON.stringify(pathToFileURL(treePath(tree(), path.join(ROOT, 'src', 'cli', 'version.ts'))).href)});`,
    `const lib = await import(${JSON.stringify(pathToFileURL(treePath(tree(), path.join(ROOT, 'src', 'index.ts'))).href)});`,
    'console.log(JSON.stringify({ version: packageVersion(), exports: Object.keys(lib).length }));',
  ].join('\n');
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script]);
  const { version, exports } = JSON.parse(stdout);
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  t.is(version, pkg.version);
  t.true(exports > 10);
  t.true(import.meta.filename.endsWith(path.join('test', 'loader', 'tree.test.ts')));
});
