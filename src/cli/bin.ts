#!/usr/bin/env -S node --max-semi-space-size=1
// The flag above keeps the young generation small: streaming allocates many short-lived 64 KiB
// buffers, and with Node's default semi-space growth a copy peaked at 112 MiB instead of 76 MiB
// (bench/README.md). It only works as a process flag.
import { setFlagsFromString } from 'node:v8';
import { codeCacheDir, loadBundle } from './code-cache.ts';

// Compile undici's WebAssembly HTTP parser with the baseline compiler only: the optimising
// compile costs a 38 MiB RSS spike at the first request and no measurable throughput. Set
// before the bundle is compiled, so that its code cache is made and used under the same flags.
setFlagsFromString('--liftoff-only');

// One cache per command (its help apart): each holds the functions its command ran, compiled.
const args = process.argv.slice(2);
const word = args.find((arg) => !arg.startsWith('-'));
const command = word && /^[a-z][a-z-]{0,30}$/.test(word) ? word : 'other';
const help = args.includes('--help') || args.includes('-h') ? '-help' : '';
const bundle = loadBundle(
  new URL('ociferry.cjs', import.meta.url),
  codeCacheDir(),
  `${command}${help}`,
);
await (bundle.exports as { main(): Promise<void> }).main();
// A run that failed may have stopped early: its code is not what the command usually runs.
if (!process.exitCode) bundle.save();
