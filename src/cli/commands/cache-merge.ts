import type { Command } from 'commander';
import {
  type CacheExportTarget,
  type CacheImportSource,
  type CacheMergeResult,
  mergeCaches,
} from '../../cache/index.ts';
import { usageError } from '../args.ts';
import type { CliContext } from '../context.ts';
import { formatBytes, plural } from '../format.ts';
import { type CacheCommandKit, cacheWriteOptions, destinationsJson } from './cache-shared.ts';
import { runCopy } from './copy-result.ts';
import type { Run } from './run.ts';

interface CacheMergeOptions {
  from: CacheImportSource[];
  to: CacheExportTarget[];
  maxConfigSize?: number;
  concurrency?: number;
  cacheDir?: string;
}

/** `ociferry cache merge`: several caches as one, each step once. */
export function cacheMergeCommand(cache: Command, run: Run, kit: CacheCommandKit): void {
  cacheWriteOptions(
    cache
      .command('merge')
      .summary('merge BuildKit caches into one (platforms, branches) without pulling layers')
      .description(
        'Merge BuildKit caches into one, so that builds for several platforms or branches share one cache ref instead of evicting each other. Records are matched as BuildKit matches them (same key and same input links is one record); the results of every source are kept, newest first; layers are deduplicated by blob and parent chain. Reads the manifests and cache configs of the sources, never a layer: on one registry every blob is mounted, across registries streamed. A cache service namespace is read from its ImportCache and its layers through one minted URL each; merged into a namespace, the cache is exported as an engine does, adding to what the namespace holds.',
      )
      .requiredOption('--from <csv>', 'cache to merge (repeat: at least two)', kit.collectImport)
      .requiredOption(
        '--to <csv>',
        'where to write the merged cache (repeatable)',
        kit.collectExport,
      ),
    kit.cacheDirHelp,
  )
    .addHelpText(
      'after',
      `
${kit.csvHelp}
  The merged cache takes the first source's form unless --to asks for another (image-manifest,
  oci-mediatypes); mode=min on a --to keeps only what the newest result reaches.
Sizes: a number of bytes, or with a unit: 500MB (powers of 1000), 1MiB (powers of 1024).

With --json, prints {"digest", "mediaType", "blobs": {"mounted", "skipped", "uploaded",
"bytesUploaded", "bytesDownloaded"}, "requests"}, then "sources", "merged": {"recordsIn",
"records", "resultsIn", "results", "layersIn", "layers"}, "configSize", "dropped" (with
--max-config-size, when results were dropped to fit: {"records", "results", "layers", "bytes"}),
"destinations" and "warnings".

Examples:
  $ ociferry cache merge --from type=registry,ref=ghcr.io/org/app:cache-amd64 \\
      --from type=registry,ref=ghcr.io/org/app:cache-arm64 \\
      --to type=registry,ref=ghcr.io/org/app:cache --max-config-size 1MiB`,
    )
    .action((options: CacheMergeOptions, command: Command) => {
      if (options.from.length < 2) usageError(command, 'cache merge needs at least two --from');
      return run(command, (ctx) => merge(ctx, options, kit));
    });
}

async function merge(
  ctx: CliContext,
  options: CacheMergeOptions,
  kit: CacheCommandKit,
): Promise<void> {
  kit.prepare(ctx, [...options.from, ...options.to]);
  const result = await runCopy(
    ctx,
    `merged ${plural(options.from.length, 'cache')}`,
    (onEvent) =>
      mergeCaches(options.from, options.to, {
        client: ctx.client,
        maxConfigSize: options.maxConfigSize,
        concurrency: options.concurrency,
        cacheDir: options.cacheDir,
        signal: ctx.signal,
        onEvent,
      }),
    ({ sources, merged, configSize, dropped, destinations, warnings }) => ({
      sources,
      merged,
      configSize,
      ...(dropped ? { dropped } : {}),
      destinations: destinationsJson(destinations),
      warnings,
    }),
    options.to.every((target) => target.type === 'local'),
  );
  ctx.info(mergeSummary(result));
  for (const warning of result.warnings) ctx.info(`warning: ${warning}`);
}

function mergeSummary(result: CacheMergeResult): string {
  const { merged, dropped } = result;
  const lines = [
    `${plural(merged.recordsIn, 'record')} in, ${plural(merged.records, 'record')} out; ` +
      `${plural(merged.results, 'result')}, ${plural(merged.layers, 'layer')}; ` +
      `config ${formatBytes(result.configSize)}`,
  ];
  if (dropped) {
    lines.push(
      `dropped the ${plural(dropped.results, 'oldest result')} (and ${plural(dropped.records, 'record')}) to fit --max-config-size`,
    );
  }
  return lines.join('\n');
}
