#!/usr/bin/env -S node --max-semi-space-size=1
// The flag above keeps the young generation small: streaming allocates many short-lived 64 KiB
// buffers, and with Node's default semi-space growth a copy peaked at 112 MiB instead of 76 MiB
// (bench/README.md). It only works as a process flag.
import { setFlagsFromString } from 'node:v8';

// Compile undici's WebAssembly HTTP parser with the baseline compiler only: the optimising
// compile costs a 38 MiB RSS spike at the first request and no measurable throughput. Must be
// set before undici is loaded, hence the dynamic imports below.
setFlagsFromString('--liftoff-only');
const { EXIT_FAILURE } = await import('./errors.ts');
const { runCli } = await import('./program.ts');

// A reader that stops early (`ociferry blob get … | head -c 10`) is not an error to report.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(EXIT_FAILURE);
});
process.exitCode = await runCli(process.argv.slice(2));
