// Runs the TypeScript of this repository: `node --import ./test/loader/register.mjs file.ts`, as
// the processes the tests start do (ava's test processes import it through its `require` option,
// ava.config.mjs). esbuild strips the types of each file once; its
// output is kept on disk, so a process loads JavaScript. Loading the library this way costs half
// the CPU tsx costs (0.8 s against 1.6 s on a busy machine), paid by every test file and process.
// It does what this repository needs and no more: ES modules, `.ts` specifiers written out.
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./hooks.mjs', import.meta.url);
