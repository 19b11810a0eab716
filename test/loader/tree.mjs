// The run's tree: the JavaScript of every TypeScript file of src/, test/ and fixtures/, laid out
// as the files are (`src/a/b.ts` as `src/a/b.mjs`), with the imports between them pointing at
// each other. Test processes load it as plain ES modules (tree-require.mjs): no loader thread, and
// no hook call per module, which cost a test process 0.1-0.3 s of CPU (a sixth of what the
// suite's test processes spent). It is written by ava.config.mjs at each run's start.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The environment variable that gives test processes the run's tree. */
export const TREE_ENV = 'OCIFERRY_TEST_TREE';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * A relative module specifier in esbuild's output, which writes each in double quotes: in an
 * import or export statement, at the start of its line or of the last line of one that lists
 * names over several lines (`} from "…"`), or in a dynamic `import("…")`.
 */
export const RELATIVE_SPECIFIER =
  /(^(?:(?:import|export)\b[^\n]*? from |\} from |import )|\bimport\()"(\.{1,2}\/[^"\n]*)"/gm;

/** Where the JavaScript of `file`, a TypeScript file of the repository, is in the tree at `tree`. */
export function treePath(tree, file) {
  return path.join(tree, path.relative(ROOT, file)).replace(/\.ts$/, '.mjs');
}

/** ava as test files import it in esbuild's output. */
const AVA_IMPORT = /^(import [^\n]*? from )"ava";$/gm;

/**
 * The JavaScript `code` of `file` as the tree holds it: a relative import of a TypeScript file
 * names that file's JavaScript in the tree; one of any other file (`./hooks.mjs`) names the file
 * itself, which is not in the tree. With `titlePrefix`, the file's import of ava is test/loader/
 * ava.mjs, which begins the title of each test the file declares with it (groups.mjs).
 */
export function treeModule(code, file, titlePrefix) {
  const tree = code.replace(RELATIVE_SPECIFIER, (_, before, specifier) => {
    const target = specifier.endsWith('.ts')
      ? `${specifier.slice(0, -'.ts'.length)}.mjs`
      : pathToFileURL(path.resolve(path.dirname(file), specifier)).href;
    return `${before}"${target}"`;
  });
  if (titlePrefix === undefined) return tree;
  const ava = new URL('ava.mjs', import.meta.url);
  ava.searchParams.set('prefix', titlePrefix);
  return tree.replace(AVA_IMPORT, (_, before) => `${before}${JSON.stringify(ava.href)};`);
}

/**
 * Write the tree at `tree` (which must not exist) from `files`: each TypeScript file with its
 * JavaScript as `code`. Packages resolve from the repository's node_modules, linked at the
 * tree's root. `titlePrefixes` gives test files that share a test process with others the prefix
 * of their tests' titles (groups.mjs).
 */
export function writeTree(files, tree, titlePrefixes = new Map()) {
  mkdirSync(tree, { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'));
  for (const { file, code } of files) {
    const out = treePath(tree, file);
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, treeModule(code, file, titlePrefixes.get(file)));
  }
}
