/**
 * The ociferry side of a benchmark, run in its own process so that its wall time, CPU time and
 * peak RSS can be measured like skopeo's. bench/lib/build.ts compiles it (with the src/ it
 * imports) to plain JavaScript, so neither tsx nor TypeScript is loaded when it runs.
 *
 *   node runner.js pull HOST/REPO:TAG LAYOUT_DIR TAG
 *   node runner.js copy HOST/REPO:TAG HOST/REPO:TAG
 *
 * Prints one JSON line: what the library reports about the job.
 */
import { LayoutStore } from '../src/layout/index.ts';
import { copy } from '../src/push/index.ts';
import { RegistryClient } from '../src/registry/index.ts';
import { resolve } from '../src/remote/resolve.ts';

const USAGE = 'usage: runner.js pull REF DIR TAG | copy SRC DST';

async function main(argv: readonly string[]): Promise<unknown> {
  const [command, ...args] = argv;
  const client = new RegistryClient();
  try {
    if (command === 'pull' && args.length === 3) {
      const [ref = '', dir = '', tag = ''] = args;
      const remote = await resolve(ref, { client });
      const store = await LayoutStore.open(dir);
      await remote.unlazy(store, { tag });
      return { digest: remote.descriptor.digest, requests: client.requestCount };
    }
    if (command === 'copy' && args.length === 2) {
      const [src = '', dst = ''] = args;
      const result = await copy(await resolve(src, { client }), dst, { client });
      return {
        digest: result.digest,
        blobs: result.blobs,
        requests: client.requestCount,
      };
    }
    throw new Error(USAGE);
  } finally {
    await client.close();
  }
}

try {
  process.stdout.write(`${JSON.stringify(await main(process.argv.slice(2)))}\n`);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : error}\n`);
  process.exitCode = 1;
}
