// Loaded first by each of ava's test processes (its `require` option, ava.config.mjs). ava
// requires a test file whose extension it is told is CommonJS, and requiring a `.ts` file here
// imports the file's JavaScript from the run's tree (tree.mjs) instead: ava awaits the import,
// so the file's tests are all declared before they run, as for any ES module test file.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { TREE_ENV, treePath } from './tree.mjs';

const tree = process.env[TREE_ENV];
if (!tree)
  throw new Error(`${TREE_ENV} is not set: run the tests with the project's ava.config.mjs`);

// Stack traces name the TypeScript files and lines: each module carries its source map.
process.setSourceMapsEnabled(true);
createRequire(import.meta.url).extensions['.ts'] = (module, file) => {
  module.exports = import(pathToFileURL(treePath(tree, file)).href);
};
