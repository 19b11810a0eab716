import type { Command } from 'commander';
import type { CacheCopyResult, CacheExportTarget, CacheImportSource } from '../../cache/index.ts';
import { positiveIntegerArg, sizeArg } from '../args.ts';
import type { CliContext } from '../context.ts';

/** What the cache subcommands share, handed over by the `cache` command that registers them. */
export interface CacheCommandKit {
  /** The help paragraph on BuildKit's CSV syntax. */
  readonly csvHelp: string;
  /** Help of `--cache-dir`. */
  readonly cacheDirHelp: string;
  /** Parse one `--from` value (a usage error when malformed). */
  readonly parseImport: (value: string) => CacheImportSource;
  /** Collect repeated `--from` values. */
  readonly collectImport: (value: string, previous?: CacheImportSource[]) => CacheImportSource[];
  /** Collect repeated `--to` values. */
  readonly collectExport: (value: string, previous?: CacheExportTarget[]) => CacheExportTarget[];
  /** Note the caches a command touches (error hints) and honour their `registry.insecure`. */
  readonly prepare: (
    ctx: CliContext,
    caches: readonly (CacheImportSource | CacheExportTarget)[],
  ) => void;
}

/** What `--max-config-size` does, for commands that drop nothing else first. */
const MAX_CONFIG_SIZE_HELP =
  'drop the oldest results until the config fits (BuildKit refuses configs over 1MiB)';

/**
 * The options of every command that writes caches: `--max-config-size` (`configSizeHelp` says
 * how it combines with the command's other limits), `--concurrency` and `--cache-dir`.
 */
export function cacheWriteOptions(
  command: Command,
  cacheDirHelp: string,
  configSizeHelp = MAX_CONFIG_SIZE_HELP,
): Command {
  return command
    .option('--max-config-size <size>', configSizeHelp, sizeArg)
    .option(
      '--concurrency <n>',
      'blob transfers at once per destination (default 8)',
      positiveIntegerArg,
    )
    .option('--cache-dir <dir>', cacheDirHelp);
}

/** A copy's destinations as `--json` shows them: `converted` null when copied as is. */
export function destinationsJson(
  destinations: CacheCopyResult['destinations'],
): Record<string, unknown>[] {
  return destinations.map((outcome) =>
    outcome.status === 'failed' ? outcome : { ...outcome, converted: outcome.converted ?? null },
  );
}
