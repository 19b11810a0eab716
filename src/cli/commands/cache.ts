import { type Command, Option } from 'commander';
import {
  type CacheCheckResult,
  type CacheExportTarget,
  type CacheImportSource,
  type CacheMode,
  cacheSourceName,
  checkCache,
  copyCache,
  DEFAULT_CACHE_DIR_MAX_BYTES,
  parseCacheExport,
  parseCacheImport,
} from '../../cache/index.ts';
import type { Reference } from '../../reference/index.ts';
import { cacheKeyArg, positiveIntegerArg, usage } from '../args.ts';
import type { CliContext } from '../context.ts';
import { formatBytes, plural } from '../format.ts';
import { cacheExplainCommand } from './cache-explain.ts';
import { cacheLsCommand } from './cache-ls.ts';
import type { CacheCommandKit } from './cache-shared.ts';
import { runCopy } from './copy-result.ts';
import type { Run } from './run.ts';

interface CacheCheckOptions {
  from: CacheImportSource[];
  cacheDir?: string;
}

interface CacheCopyOptions {
  from: CacheImportSource;
  to: CacheExportTarget[];
  mode?: CacheMode;
  key?: string[];
  ignoreError?: boolean;
  concurrency?: number;
  cacheDir?: string;
}

/** The `--cache-dir` option of both cache commands. */
const CACHE_DIR_HELP = `keep cache configs here across runs (the least recently used go beyond ${DEFAULT_CACHE_DIR_MAX_BYTES / 2 ** 20} MiB)`;

const CSV_HELP = `Caches are named in BuildKit's CSV syntax:
  type=registry,ref=HOST/REPO:TAG[,mode=min|max]     (a bare HOST/REPO:TAG also works for --from)
  type=local,src=DIR|dest=DIR[,tag=T][,digest=D]     (store= is accepted as the old name)
registry.insecure=true on a registry cache skips TLS certificate verification. ociferry has one
TLS setting per run, so it then applies to every registry the command talks to, as --insecure
does (a warning names the caches that asked). A plain-HTTP registry needs --plain-http.`;

/** `ociferry cache check` and `ociferry cache copy`: BuildKit caches without pulling layers. */
export function cacheCommands(program: Command, run: Run): void {
  const cache = program
    .command('cache')
    .description('Check and copy BuildKit build caches (registry and local).');

  cache
    .command('check')
    .summary('which record digests have a result in the caches, without downloading a layer')
    .description(
      "Look record digests up in BuildKit caches: a hit is a record with that digest whose result's blobs the cache manifest lists (the newest result wins across several --from, as in BuildKit). This is a lookup by digest alone, not BuildKit's decision: BuildKit also matches each input's links, so a COPY whose files changed keeps its digest yet runs, and steps below a hit are skipped although their records may have no result. Use cache explain for what BuildKit would do. Reads manifests and cache configs, asks whether each layer of a hit exists (HEAD or stat), never downloads a layer.",
    )
    .requiredOption('--from <csv>', 'cache to read (repeatable)', collectImport)
    .argument('<key...>', 'record digests (cache ls lists them)', collectKeys)
    .option('--cache-dir <dir>', CACHE_DIR_HELP)
    .addHelpText(
      'after',
      `
${CSV_HELP}

Prints one line per key ("hit" or "miss"); with --json, {"hits": [{"key", "source",
"createdAt", "chain": [{"digest", "size", "mediaType", "diffID", "exists"}]}], "misses": [...],
"layerBytesDownloaded": 0, "requests", "warnings", "lookup": "record-digest", "meaning"}.
"exists" false means the blob is listed but missing: BuildKit could not load that result.
A miss is not an error: the status is 0.

Examples:
  $ ociferry cache check --from type=registry,ref=ghcr.io/org/app:buildcache sha256:…
  $ ociferry cache check --json --from type=local,src=./cache --from ghcr.io/org/app:cache sha256:… sha256:…`,
    )
    .action((keys: string[], options: CacheCheckOptions, command: Command) =>
      run(command, (ctx) => check(ctx, keys, options)),
    );

  cache
    .command('copy')
    .summary('copy a BuildKit cache to registries or local stores')
    .description(
      'Copy a BuildKit cache: blobs already there are skipped, blobs on the same registry mounted, the rest streamed. mode=max in the same format keeps the manifest byte for byte; mode=min keeps what the --key records (default: the newest result) reach.',
    )
    .requiredOption('--from <csv>', 'cache to read', parseImport)
    .requiredOption('--to <csv>', 'where to write it (repeatable)', collectExport)
    .addOption(
      new Option('--mode <mode>', 'mode for every --to, overriding theirs').choices(['min', 'max']),
    )
    .option('--key <digest>', 'with mode=min: keep what this key reaches (repeatable)', collectKeys)
    .option('--ignore-error', 'report a failed destination and go on (ignore-error=true)')
    .option(
      '--concurrency <n>',
      'blob transfers at once per destination (default 8)',
      positiveIntegerArg,
    )
    .option('--cache-dir <dir>', CACHE_DIR_HELP)
    .addHelpText(
      'after',
      `
${CSV_HELP}
  --to takes BuildKit's export keys: mode, image-manifest, oci-mediatypes, ignore-error, reset.

With --json, prints {"digest", "mediaType", "blobs": {"mounted", "skipped", "uploaded",
"bytesUploaded", "bytesDownloaded"}, "requests"} (digest of the first destination, blobs and
requests summed), then "source", "destinations" and "warnings".

Examples:
  $ ociferry cache copy --from type=registry,ref=ghcr.io/org/app:cache \\
      --to type=registry,ref=registry.example/app:cache,mode=max
  $ ociferry cache copy --from type=local,src=./cache --to type=registry,ref=ghcr.io/org/app:cache --mode min`,
    )
    .action((options: CacheCopyOptions, command: Command) =>
      run(command, (ctx) => copy(ctx, options)),
    );

  const kit: CacheCommandKit = {
    csvHelp: CSV_HELP,
    cacheDirHelp: CACHE_DIR_HELP,
    parseImport,
    collectImport,
    prepare: (ctx, caches) => {
      concerns(ctx, caches);
      honourInsecure(ctx, caches);
    },
  };
  cacheLsCommand(cache, run, kit);
  cacheExplainCommand(cache, run, kit);
}

async function check(ctx: CliContext, keys: string[], options: CacheCheckOptions): Promise<void> {
  concerns(ctx, options.from);
  honourInsecure(ctx, options.from);
  const result = await checkCache(options.from, keys, {
    client: ctx.client,
    cacheDir: options.cacheDir,
    signal: ctx.signal,
  });
  for (const warning of result.warnings) ctx.info(`warning: ${warning}`);
  if (ctx.json) ctx.printJson(checkJson(result));
  else ctx.print(checkText(keys, result));
}

async function copy(ctx: CliContext, options: CacheCopyOptions): Promise<void> {
  concerns(ctx, [options.from]);
  concerns(ctx, options.to);
  honourInsecure(ctx, [options.from, ...options.to]);
  const result = await runCopy(
    ctx,
    `copied the cache ${cacheSourceName(options.from)}`,
    (onEvent) =>
      copyCache(options.from, options.to, {
        client: ctx.client,
        mode: options.mode,
        keys: options.key,
        ignoreError: options.ignoreError,
        concurrency: options.concurrency,
        cacheDir: options.cacheDir,
        signal: ctx.signal,
        onEvent,
      }),
    ({ source, destinations, warnings }) => ({
      source,
      destinations: destinations.map((outcome) => {
        if (outcome.status === 'failed') return outcome;
        const { converted: _, ...exported } = outcome;
        return exported;
      }),
      warnings,
    }),
    options.to.every((target) => target.type === 'local'),
  );
  for (const outcome of result.destinations) {
    if (outcome.status === 'exported') {
      const how = `mode=${outcome.mode}, ${outcome.format}${outcome.rebuilt ? ', rebuilt' : ''}`;
      ctx.info(`exported to ${outcome.target}: ${outcome.digest} (${how})`);
    }
  }
  for (const warning of result.warnings) ctx.info(`warning: ${warning}`);
}

/** The `--json` object: the contract's fields first, then the warnings. */
function checkJson(result: CacheCheckResult): Record<string, unknown> {
  const { hits, misses, layerBytesDownloaded, requests, warnings, lookup, meaning } = result;
  return { hits, misses, layerBytesDownloaded, requests, warnings, lookup, meaning };
}

function checkText(keys: readonly string[], result: CacheCheckResult): string {
  const hits = new Map(result.hits.map((hit) => [hit.key, hit]));
  return keys
    .map((key) => {
      const hit = hits.get(key);
      if (!hit) return `miss ${key}`;
      const size = hit.chain.reduce((sum, blob) => sum + blob.size, 0);
      const missing = hit.chain.filter((blob) => !blob.exists).length;
      const blobs = missing === 0 ? 'all present' : `${missing} missing`;
      return `hit  ${key} ${hit.source} created ${hit.createdAt}, ${plural(hit.chain.length, 'layer')} (${formatBytes(size)}), ${blobs}`;
    })
    .join('\n');
}

/** Remember the references caches live at, for error hints; the error line names the command. */
function concerns(
  ctx: CliContext,
  caches: ReadonlyArray<CacheImportSource | CacheExportTarget>,
): void {
  for (const cache of caches) {
    const ref: Reference =
      cache.type === 'registry'
        ? cache.ref
        : { kind: 'layout', path: 'src' in cache ? cache.src : cache.dest, tag: cache.tag };
    ctx.concerns(ref);
  }
}

/**
 * `registry.insecure=true` is a client setting the library leaves to its caller: skip TLS
 * verification for the registries of the caches that ask for it.
 */
function honourInsecure(
  ctx: CliContext,
  caches: ReadonlyArray<CacheImportSource | CacheExportTarget>,
): void {
  const insecure = caches.flatMap((cache) =>
    cache.type === 'registry' && cache.insecure === true ? [cache.ref.registry] : [],
  );
  ctx.skipTlsVerification(insecure);
}

function parseImport(value: string): CacheImportSource {
  return usage(() => parseCacheImport(value));
}

function collectImport(value: string, previous: CacheImportSource[] = []): CacheImportSource[] {
  return [...previous, parseImport(value)];
}

function collectExport(value: string, previous: CacheExportTarget[] = []): CacheExportTarget[] {
  return [...previous, usage(() => parseCacheExport(value))];
}

function collectKeys(value: string, previous: string[] = []): string[] {
  return [...previous, cacheKeyArg(value)];
}
