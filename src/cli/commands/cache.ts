import { type Command, CommanderError, Option } from 'commander';
import {
  type CacheCheckResult,
  type CacheCopyResult,
  type CacheExportTarget,
  type CacheImportSource,
  type CacheMode,
  cacheSourceName,
  checkCache,
  copyCache,
  DEFAULT_CACHE_DIR_MAX_BYTES,
  parseCacheExport,
  parseCacheImport,
  readServiceToken,
} from '../../cache/index.ts';
import type { Reference } from '../../reference/index.ts';
import { cacheKeyArg, usage } from '../args.ts';
import type { CliContext } from '../context.ts';
import { formatBytes, plural } from '../format.ts';
import { cacheExplainCommand } from './cache-explain.ts';
import { cacheLsCommand } from './cache-ls.ts';
import { cacheMergeCommand } from './cache-merge.ts';
import { cachePruneCommand } from './cache-prune.ts';
import { cacheServeCommand } from './cache-serve.ts';
import { type CacheCommandKit, cacheWriteOptions, destinationsJson } from './cache-shared.ts';
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
  maxConfigSize?: number;
  concurrency?: number;
  cacheDir?: string;
}

/** The `--cache-dir` option of both cache commands. */
const CACHE_DIR_HELP = `keep cache configs here across runs (the least recently used go beyond ${DEFAULT_CACHE_DIR_MAX_BYTES / 2 ** 20} MiB)`;

const CSV_HELP = `Caches are named in BuildKit's CSV syntax:
  type=registry,ref=HOST/REPO:TAG[,mode=min|max]     (a bare HOST/REPO:TAG also works for --from)
  type=local,src=DIR|dest=DIR[,tag=T][,digest=D]     (store= is accepted as the old name)
  type=service,url=URL,token-env=VAR                 (ociferry cache serve; token from $VAR)
registry.insecure=true on a registry cache skips TLS certificate verification for that registry
only (a warning names it); --insecure skips it for every registry. Loopback registries
(localhost, 127.0.0.0/8, [::1]) are reached over HTTPS or plain HTTP automatically; any other
plain-HTTP registry needs --plain-http, which forces plain HTTP.`;

/** Which cache form which reader takes (see src/cache/readers.ts). */
const FORMS_HELP = `Cache forms and who reads them:
  image-manifest  (image-manifest=true, BuildKit's default) BuildKit v0.12 and later, Harbor.
                  Not BuildKit before v0.12 (Docker Engine 20.10): it rebuilds without a word.
  index           (image-manifest=false) every BuildKit version. Not Harbor (404 on the push).
  manifest-list   (oci-mediatypes=false) every BuildKit version. Not Harbor.
  inline          (an image built with inline cache) every BuildKit version, every registry.
A copy without mode=, image-manifest= or oci-mediatypes= keeps the source's form and digest; an
inline cache is copied as its image. image-manifest= sets the wrapping and oci-mediatypes= the
media types, the other kept from the source. Before writing an index or Docker list to a
registry whose /v2/ challenge names Harbor's token service, cache copy warns.`;

/** `ociferry cache check` and `ociferry cache copy`: BuildKit caches without pulling layers. */
export function cacheCommands(program: Command, run: Run): void {
  const cache = program
    .command('cache')
    .description(
      'List, explain, check, copy, merge and prune BuildKit build caches (registry, local and cache service).',
    )
    .addHelpText('after', `\n${CSV_HELP}`);

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
A cache whose config is over 1 MiB gets a warning: BuildKit refuses to import it.
A miss is not an error: the status is 0.

Examples:
  $ ociferry cache check --from type=registry,ref=ghcr.io/org/app:buildcache sha256:…
  $ ociferry cache check --json --from type=local,src=./cache --from ghcr.io/org/app:cache sha256:… sha256:…`,
    )
    .action((keys: string[], options: CacheCheckOptions, command: Command) =>
      run(command, (ctx) => check(ctx, keys, options)),
    );

  cacheWriteOptions(
    cache
      .command('copy')
      .summary('copy a BuildKit cache to registries or local stores')
      .description(
        'Copy a BuildKit cache: blobs already there are skipped, blobs on the same registry mounted, the rest streamed. Without mode=, image-manifest= or oci-mediatypes= the cache is copied as it is (same manifest, same digest; an inline cache stays an image). mode=min keeps what the --key records (default: the newest result) reach; image-manifest= and oci-mediatypes= change the form (each one property, the rest kept from the source).',
      )
      .requiredOption('--from <csv>', 'cache to read', parseImport)
      .requiredOption('--to <csv>', 'where to write it (repeatable)', collectExport)
      .addOption(
        new Option('--mode <mode>', 'mode for every --to, overriding theirs').choices([
          'min',
          'max',
        ]),
      )
      .option(
        '--key <digest>',
        'keep what this key reaches (repeatable; implies mode=min where no mode is given)',
        collectKeys,
      )
      .option('--ignore-error', 'report a failed destination and go on (ignore-error=true)'),
    CACHE_DIR_HELP,
  )
    .addHelpText(
      'after',
      `
${CSV_HELP}
  --to takes BuildKit's export keys: mode, image-manifest, oci-mediatypes, ignore-error, reset
  (compression= only applies to new blobs, and a copy makes none).

${FORMS_HELP}

With --json, prints {"digest", "mediaType", "blobs": {"mounted", "skipped", "uploaded",
"bytesUploaded", "bytesDownloaded"}, "requests", "size", "tags"} (digest of the first
destination, blobs and requests summed; bytesDownloaded counts blob bytes that crossed the
network), then "source", "sourceFormat", "destinations" (each with "mode", "format", "rebuilt"
and "converted": null when copied as is, else {"mode": "min"}, {"form": FORM} and/or
{"droppedForConfigSize": N}) and "warnings".

Examples:
  $ ociferry cache copy --from type=registry,ref=ghcr.io/org/app:cache \\
      --to type=registry,ref=registry.example/app:cache
  $ ociferry cache copy --from type=local,src=./cache \\
      --to type=registry,ref=harbor.example/app:cache,image-manifest=true
  $ ociferry cache copy --from ghcr.io/org/app:cache --to type=local,dest=./cache,mode=min`,
    )
    .action((options: CacheCopyOptions, command: Command) =>
      run(command, (ctx) => copy(ctx, options)),
    );

  const kit: CacheCommandKit = {
    csvHelp: CSV_HELP,
    cacheDirHelp: CACHE_DIR_HELP,
    parseImport,
    collectImport,
    collectExport,
    prepare: (ctx, caches) => {
      concerns(ctx, caches);
      honourInsecure(ctx, caches);
      readServiceTokens(ctx, caches);
    },
  };
  cacheLsCommand(cache, run, kit);
  cacheExplainCommand(cache, run, kit);
  cacheServeCommand(cache, run);
  cacheMergeCommand(cache, run, kit);
  cachePruneCommand(cache, run, kit);
}

async function check(ctx: CliContext, keys: string[], options: CacheCheckOptions): Promise<void> {
  concerns(ctx, options.from);
  honourInsecure(ctx, options.from);
  readServiceTokens(ctx, options.from);
  const result = await checkCache(options.from, keys, {
    context: ctx.library,
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
  readServiceTokens(ctx, [options.from, ...options.to]);
  const result = await runCopy(
    ctx,
    `copied the cache ${cacheSourceName(options.from)}`,
    (onEvent) =>
      copyCache(options.from, options.to, {
        context: ctx.library,
        mode: options.mode,
        keys: options.key,
        ignoreError: options.ignoreError,
        maxConfigSize: options.maxConfigSize,
        concurrency: options.concurrency,
        cacheDir: options.cacheDir,
        signal: ctx.signal,
        onEvent,
        // Printed as they arise: a warning about a destination matters most when it then fails.
        onWarning: (warning) => ctx.info(`warning: ${warning}`),
      }),
    copyJson,
    options.to.every((target) => target.type === 'local'),
  );
  for (const outcome of result.destinations) {
    if (outcome.status !== 'exported') continue;
    if (outcome.digest === '') {
      // A cache service keeps records and blobs, no manifest.
      const { uploaded, skipped } = outcome.blobs;
      ctx.info(
        `exported to ${outcome.target}: ${plural(uploaded, 'layer')} uploaded, ${skipped} already there${outcome.mode === 'min' ? ' (mode=min)' : ''}`,
      );
    } else {
      ctx.info(`exported to ${outcome.target}: ${outcome.digest} (${howCopied(result, outcome)})`);
    }
  }
}

/** The `--json` fields of a cache copy after the contract's. */
function copyJson(result: CacheCopyResult): Record<string, unknown> {
  const { source, sourceFormat, destinations, warnings } = result;
  return {
    source,
    sourceFormat,
    destinations: destinationsJson(destinations),
    warnings,
  };
}

/** `as is, index` or `converted: mode=min, image-manifest -> index`. */
function howCopied(
  result: CacheCopyResult,
  outcome: Extract<CacheCopyResult['destinations'][number], { status: 'exported' }>,
): string {
  const { converted } = outcome;
  if (!converted) return `as is, ${outcome.format}`;
  const changes = [
    ...(converted.mode ? [`mode=${converted.mode}`] : []),
    ...(converted.form ? [`${result.sourceFormat} -> ${converted.form}`] : []),
    ...(converted.droppedForConfigSize
      ? [`the ${plural(converted.droppedForConfigSize, 'oldest result')} dropped to fit`]
      : []),
  ];
  return `converted: ${changes.join(', ')}${converted.form ? '' : `, ${outcome.format}`}`;
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
    if (cache.type === 'service') continue;
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

/**
 * Read the tokens of service caches from this run's environment (`token-env=VAR`); an unset
 * variable is a usage error naming it, never showing a value.
 */
function readServiceTokens(
  ctx: CliContext,
  caches: ReadonlyArray<CacheImportSource | CacheExportTarget>,
): void {
  for (const cache of caches) {
    if (cache.type !== 'service') continue;
    try {
      readServiceToken(cache, ctx.io.env);
    } catch (error) {
      const message = (error as Error).message;
      ctx.io.stderr.write(`error: ${message}\n`);
      throw new CommanderError(2, 'ociferry.usage', message);
    }
  }
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
