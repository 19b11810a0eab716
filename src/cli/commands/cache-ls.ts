import type { Command } from 'commander';
import {
  type CacheImportSource,
  type CacheListing,
  type ListedRecord,
  listCache,
} from '../../cache/index.ts';
import type { CliContext } from '../context.ts';
import { formatBytes, plural, shortDigest } from '../format.ts';
import type { CacheCommandKit } from './cache-shared.ts';
import type { Run } from './run.ts';

interface CacheLsOptions {
  cacheDir?: string;
}

/** `ociferry cache ls`: the records of a cache in build order. */
export function cacheLsCommand(cache: Command, run: Run, kit: CacheCommandKit): void {
  cache
    .command('ls')
    .summary("list a cache's records: keys, input links, results")
    .description(
      "List the records of a BuildKit cache in build order: each record's digest (the cache key BuildKit looks up), its inputs (from which record, with which selector) and its results (time, layers, bytes), and the cache config's form and size. Records without inputs are sources: base images and content checksums of files. Reads the manifest and the config (for an inline cache, the image configs), never a layer.",
    )
    .argument('<csv>', 'the cache, as a --from value', kit.parseImport)
    .option('--cache-dir <dir>', kit.cacheDirHelp)
    .addHelpText(
      'after',
      `
${kit.csvHelp}

Prints the config's form and size, then one block per record: "#INDEX DIGEST" and, for an inline
cache, the Dockerfile instruction of its layer; its inputs ("input N <- #INDEX") and its results.
With --json, {"cache", "config": {"form", "manifestMediaType", "digest", "size"}, "records":
[{"digest", "record", "source", "inputs": [{"input", "from", "fromRecord", "selector"}],
"results": [{"createdAt", "layers", "bytes", "unlisted", "chained"}], "layer", "createdBy"}],
"layers",
"bytes", "requests", "warnings"}. A config over 1 MiB gets a warning: BuildKit refuses to import it.

Examples:
  $ ociferry cache ls registry.example/app:buildcache
  $ ociferry cache ls --json type=local,src=./cache,tag=main`,
    )
    .action((source: CacheImportSource, options: CacheLsOptions, command: Command) =>
      run(command, (ctx) => ls(ctx, source, options, kit)),
    );
}

async function ls(
  ctx: CliContext,
  source: CacheImportSource,
  options: CacheLsOptions,
  kit: CacheCommandKit,
): Promise<void> {
  kit.prepare(ctx, [source]);
  const listing = await listCache(source, {
    context: ctx.library,
    cacheDir: options.cacheDir,
    signal: ctx.signal,
  });
  for (const warning of listing.warnings) ctx.info(`warning: ${warning}`);
  if (ctx.json) ctx.printJson(listing);
  else ctx.print(lsText(listing));
}

function lsText(listing: CacheListing): string {
  const { config } = listing;
  const where = config.form === 'inline' ? 'image config' : 'config';
  const lines = [
    `${listing.cache}: ${config.form} (${where} ${shortDigest(config.digest)}, ${formatBytes(config.size)}), ${plural(listing.records.length, 'record')}, ${plural(listing.layers, 'layer')} (${formatBytes(listing.bytes)})`,
  ];
  for (const record of listing.records) lines.push(...recordLines(record));
  return lines.join('\n');
}

function recordLines(record: ListedRecord): string[] {
  const what = record.createdBy
    ? `  ${record.createdBy.replace(/ # buildkit$/, '')}`
    : record.source
      ? '  (source or content checksum)'
      : '';
  const lines = [`#${record.record} ${record.digest}${what}`];
  for (const input of record.inputs) {
    const selector = input.selector ? ` selector ${shortDigest(input.selector)}` : '';
    lines.push(
      `    input ${input.input} <- #${input.fromRecord} ${shortDigest(input.from)}${selector}`,
    );
  }
  for (const result of record.results) {
    const unlisted =
      result.unlisted.length > 0 ? `, ${result.unlisted.length} not in the manifest` : '';
    lines.push(
      `    result ${result.createdAt}: ${plural(result.layers.length, 'layer')} (${formatBytes(result.bytes)})${unlisted}`,
    );
  }
  return lines;
}
