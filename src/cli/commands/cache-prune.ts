import type { Command } from 'commander';
import {
  type CacheExportTarget,
  type CacheImportSource,
  type CachePruneResult,
  pruneCache,
} from '../../cache/index.ts';
import { durationArg, positiveIntegerArg, sizeArg } from '../args.ts';
import type { CliContext } from '../context.ts';
import { formatBytes, plural } from '../format.ts';
import { type CacheCommandKit, cacheWriteOptions, destinationsJson } from './cache-shared.ts';
import { runCopy } from './copy-result.ts';
import type { Run } from './run.ts';

interface CachePruneOptions {
  from: CacheImportSource;
  to: CacheExportTarget[];
  keepNewer?: number;
  keepLast?: number;
  maxSize?: number;
  maxConfigSize?: number;
  concurrency?: number;
  cacheDir?: string;
}

/** `ociferry cache prune`: retention for a cache, registry or local. */
export function cachePruneCommand(cache: Command, run: Run, kit: CacheCommandKit): void {
  cacheWriteOptions(
    cache
      .command('prune')
      .summary(
        'keep the recent part of a BuildKit cache (registry, local or service), drop the rest',
      )
      .description(
        "Keep the results of a BuildKit cache that the limits keep and the records they need, drop the rest, and write the cache (--to may be --from: a prune in place uploads only the new config). Each limit removes results: a result stays when it passes all the limits given. A build is found from the cache graph: its final records are those no other record links to, its instant the newest creation time of their results; final records of one instant are one build, and a build keeps every result of the records it reaches. Reads the manifest and the config, never a layer. A local store written is then collected as BuildKit's reset=true does; a registry keeps unreferenced blobs until its garbage collection runs. A cache service namespace with --to its own namespace is pruned by the service (same limits and rules), which moves no blob and deletes the blobs no namespace needs any more; a namespace written elsewhere is pruned here, and an export to a namespace adds to what it holds.",
      )
      .requiredOption('--from <csv>', 'cache to prune', kit.parseImport)
      .requiredOption(
        '--to <csv>',
        'where to write the pruned cache (repeatable)',
        kit.collectExport,
      )
      .option('--keep-last <n>', 'keep the results of the N most recent builds', positiveIntegerArg)
      .option(
        '--keep-newer <duration>',
        'keep results created less than this long ago',
        durationArg,
      )
      .option('--max-size <size>', 'keep the newest results whose layers fit in SIZE', sizeArg),
    kit.cacheDirHelp,
    'then drop the oldest results until the config fits (BuildKit refuses configs over 1MiB)',
  )
    .addHelpText(
      'after',
      `
${kit.csvHelp}
Durations: 90s, 30m, 72h, 7d, 2w, 1h30m. Sizes: a number of bytes, or with a unit: 500MB
(powers of 1000), 1MiB (powers of 1024). --max-size counts each blob once, going from the newest
result; once one does not fit, older results that would add bytes are dropped too.

With --json, prints {"digest", "mediaType", "blobs": {"mounted", "skipped", "uploaded",
"bytesUploaded", "bytesDownloaded"}, "requests"}, then "source", "kept" and "dropped" (each
{"records", "results", "layers", "bytes"}; dropped bytes are blobs the cache references no
more), "droppedForConfigSize", "builds" (with --keep-last: {"found", "kept"}), "configSize",
"collected" (per local store: {"target", "deleted", "bytesFreed"}), "services" (per namespace
pruned in place: {"target", "blobsReleased", "bytesReleased", "blobsDeleted", "bytesFreed"}),
"destinations", "warnings".
Keeping no result is an error, and nothing is written.

Examples:
  $ ociferry cache prune --from type=registry,ref=ghcr.io/org/app:cache \\
      --to type=registry,ref=ghcr.io/org/app:cache --keep-newer 7d --max-config-size 1MiB
  $ ociferry cache prune --from type=local,src=./cache --to type=local,dest=./cache --keep-last 3
  $ ociferry cache prune --from type=service,url=http://cache:7450,token-env=CACHE_TOKEN \
      --to type=service,url=http://cache:7450,token-env=CACHE_TOKEN --keep-newer 7d`,
    )
    .action((options: CachePruneOptions, command: Command) =>
      run(command, (ctx) => prune(ctx, options, kit)),
    );
}

async function prune(
  ctx: CliContext,
  options: CachePruneOptions,
  kit: CacheCommandKit,
): Promise<void> {
  kit.prepare(ctx, [options.from, ...options.to]);
  const result = await runCopy(
    ctx,
    'pruned the cache',
    (onEvent) =>
      pruneCache(options.from, options.to, {
        client: ctx.client,
        keepLast: options.keepLast,
        keepNewer: options.keepNewer,
        maxSize: options.maxSize,
        maxConfigSize: options.maxConfigSize,
        concurrency: options.concurrency,
        cacheDir: options.cacheDir,
        signal: ctx.signal,
        onEvent,
      }),
    (done) => ({
      source: done.source,
      kept: done.kept,
      dropped: done.dropped,
      droppedForConfigSize: done.droppedForConfigSize,
      ...(done.builds ? { builds: done.builds } : {}),
      configSize: done.configSize,
      collected: done.collected,
      services: done.services,
      destinations: destinationsJson(done.destinations),
      warnings: done.warnings,
    }),
    options.to.every((target) => target.type === 'local'),
  );
  ctx.info(pruneSummary(result, options.to));
  for (const warning of result.warnings) ctx.info(`warning: ${warning}`);
}

function pruneSummary(result: CachePruneResult, to: readonly CacheExportTarget[]): string {
  const { kept, dropped } = result;
  const counts = (c: typeof kept) =>
    `${plural(c.records, 'record')}, ${plural(c.results, 'result')}, ${plural(c.layers, 'layer')}`;
  const lines = [`kept ${counts(kept)} (${formatBytes(kept.bytes)}); dropped ${counts(dropped)}`];
  if (result.builds) {
    lines.push(`builds: ${result.builds.kept} of ${result.builds.found} kept`);
  }
  if (result.droppedForConfigSize > 0) {
    lines.push(
      `dropped the ${plural(result.droppedForConfigSize, 'oldest result')} to fit --max-config-size (config ${formatBytes(result.configSize)})`,
    );
  }
  for (const service of result.services) {
    lines.push(
      `${service.target}: ${plural(service.blobsReleased, 'blob')} let go (${formatBytes(service.bytesReleased)}), ${plural(service.blobsDeleted, 'blob')} deleted from the service's store (${formatBytes(service.bytesFreed)})`,
    );
  }
  for (const store of result.collected) {
    lines.push(
      `${store.target}: deleted ${plural(store.deleted.length, 'unreferenced blob')} (${formatBytes(store.bytesFreed)})`,
    );
  }
  if (to.some((target) => target.type === 'registry') && dropped.bytes > 0) {
    lines.push(
      `${formatBytes(dropped.bytes)} of blobs no longer referenced stay in the registry until its garbage collection runs`,
    );
  }
  return lines.join('\n');
}
