import type { Command } from 'commander';
import {
  type CacheExplanation,
  type CacheImportSource,
  type ExplainedStep,
  explainCache,
} from '../../cache/index.ts';
import type { CliContext } from '../context.ts';
import { shortDigest } from '../format.ts';
import type { CacheCommandKit } from './cache-shared.ts';
import type { Run } from './run.ts';

interface CacheExplainOptions {
  build: CacheImportSource;
  from: CacheImportSource[];
  readsImageManifest?: boolean;
  cacheDir?: string;
}

/** `ociferry cache explain`: which steps of a build BuildKit would serve from caches, and why. */
export function cacheExplainCommand(cache: Command, run: Run, kit: CacheCommandKit): void {
  cache
    .command('explain')
    .summary('which steps of a build BuildKit would serve from caches, and why')
    .description(
      "Predict, step by step, what BuildKit (v0.8, Docker Engine 20.10) does when it rebuilds a build with --cache-from the --from caches: which steps it serves from them (it prints them CACHED) and why each other step runs. --build is a cache holding the build's own records: the inline cache of the image it produced, or a cache it exported. Keys are matched as BuildKit's solver walks them (digest and input links with their selectors), not by digest alone. Reads manifests and cache configs only; the blobs of results are checked with HEAD (or stat), never downloaded.",
    )
    .requiredOption('--build <csv>', "cache holding the build's own records", kit.parseImport)
    .requiredOption('--from <csv>', 'cache a rebuild would import (repeatable)', kit.collectImport)
    .option(
      '--reads-image-manifest',
      "the rebuilding BuildKit reads image-manifest caches (v0.12 and later); by default it is Docker Engine 20.10's, which finds nothing in them",
    )
    .option('--cache-dir <dir>', kit.cacheDirHelp)
    .addHelpText(
      'after',
      `
${kit.csvHelp}

Prints one line per step in build order ("cached" or "runs", the step's digest, its Dockerfile
instruction when the image history has it, and why), then a summary. With --json,
{"steps": [{"digest", "cached", "reason", "code", "record", "inputs", "layer", "createdBy",
"source", "createdAt", "missingBlobs"}], "cached", "total", "finalCached", "requests",
"layerBytesDownloaded": 0, "build", "from", "sources", "warnings"}. code is one of loaded,
skipped (a later step is loaded), no-record, content-changed, parent-runs, not-linked, no-result,
blobs-missing. A step that runs is not an error: the status is 0.

Examples:
  $ ociferry cache explain --build registry.example/app:v2 --from registry.example/app:v1
  $ ociferry cache explain --json --build type=registry,ref=ghcr.io/org/app:pr-12 \\
      --from type=registry,ref=ghcr.io/org/app:buildcache`,
    )
    .action((options: CacheExplainOptions, command: Command) =>
      run(command, (ctx) => explain(ctx, options, kit)),
    );
}

async function explain(
  ctx: CliContext,
  options: CacheExplainOptions,
  kit: CacheCommandKit,
): Promise<void> {
  kit.prepare(ctx, [options.build, ...options.from]);
  const result = await explainCache(options.build, options.from, {
    context: ctx.library,
    readsImageManifest: options.readsImageManifest,
    cacheDir: options.cacheDir,
    signal: ctx.signal,
  });
  for (const warning of result.warnings) ctx.info(`warning: ${warning}`);
  if (ctx.json) ctx.printJson(explainJson(result));
  else ctx.print(explainText(result));
}

/** The `--json` object: the contract's fields first. */
function explainJson(result: CacheExplanation): Record<string, unknown> {
  const { steps, cached, total, finalCached, requests, ...rest } = result;
  return { steps, cached, total, finalCached, requests, ...rest };
}

function explainText(result: CacheExplanation): string {
  const lines = result.steps.map(stepLine);
  const final = result.finalCached ? 'the final step is cached' : 'the final step runs';
  lines.push(`${result.cached}/${result.total} steps cached; ${final}`);
  return lines.join('\n');
}

function stepLine(step: ExplainedStep): string {
  const what = step.createdBy ? ` ${step.createdBy.replace(/ # buildkit$/, '')}` : '';
  const status = step.cached ? 'cached' : 'runs  ';
  return `${status} ${shortDigest(step.digest)}${what}: ${step.reason}`;
}
