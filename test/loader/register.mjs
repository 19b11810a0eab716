// Runs the TypeScript of this repository: `node --import ./test/loader/register.mjs file.ts`, as
// some processes the tests start do (test/helpers/typescript.ts), and ava's test processes when ava
// watches the files. Its hooks run on a loader thread of their own, which each module's load goes
// through: test processes otherwise load the run's tree (tree.mjs), which costs them 0.1-0.3 s of
// CPU less.
// It does what this repository needs and no more: ES modules, `.ts` specifiers written out.
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./hooks.mjs', import.meta.url);
