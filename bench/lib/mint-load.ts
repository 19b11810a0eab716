/**
 * GetLayerDownloadURL calls against a cache service from a process of its own, as engines call
 * it (the service's thread then serves and nothing else):
 *   node --import tsx bench/lib/mint-load.ts URL TOKEN DIGEST CALLS CONCURRENCY
 * Prints `{"perSecond": N, "cpuMs": M}` (calls per second of wall time after a warm-up, and this
 * process's CPU).
 */
import { Agent } from 'undici';
import { CacheServiceClient } from '../../src/service/client.ts';

const [url, token, digest, callsText, concurrencyText] = process.argv.slice(2);
if (!url || !token || !digest) {
  console.error('usage: mint-load.ts URL TOKEN DIGEST CALLS CONCURRENCY');
  process.exit(2);
}
const calls = Number(callsText ?? 2000);
const concurrency = Number(concurrencyText ?? 1);
const dispatcher = new Agent({ connections: concurrency });
const client = new CacheServiceClient({ url, token, dispatcher });
const run = async (n: number) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await client.getLayerDownloadUrl(digest);
    }),
  );
};
await run(Math.min(200, calls)); // connections open, code compiled
const cpu = process.cpuUsage();
const start = performance.now();
await run(calls);
const seconds = (performance.now() - start) / 1000;
const used = process.cpuUsage(cpu);
console.log(
  JSON.stringify({
    perSecond: Math.round(calls / seconds),
    cpuMs: Math.round((used.user + used.system) / 1000),
  }),
);
await dispatcher.close();
