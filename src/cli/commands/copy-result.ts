import type { CopyResult } from '../../copy/index.ts';
import type { CliContext } from '../context.ts';
import { formatBytes, formatDuration } from '../format.ts';
import type { Progress } from '../progress/index.ts';

/**
 * Run a copy-like operation with the progress display of this run, then print its result:
 * with `--json` the contract object (plus `extraJson` fields after it); otherwise the digest on
 * stdout and a summary on stderr, where blobs sent are `written` when every destination is a
 * layout (`toLayouts`), else `uploaded`.
 */
export async function runCopy<R extends CopyResult>(
  ctx: CliContext,
  summary: string,
  operation: (onEvent: Progress['onEvent'] | undefined) => Promise<R>,
  extraJson: (result: R) => Record<string, unknown> = () => ({}),
  toLayouts = false,
): Promise<R> {
  const started = Date.now();
  const progress = ctx.progress();
  let result: R;
  try {
    result = await operation(progress?.onEvent);
  } finally {
    progress?.stop();
  }
  // Every request of the run, resolving the source included, not only those of the copy itself.
  const requests = ctx.requestCount;
  if (ctx.json) {
    ctx.printJson({ ...copyJson(result, requests), ...extraJson(result) });
    return result;
  }
  const { blobs } = result;
  ctx.info(
    `${summary}: ${blobs.uploaded} ${toLayouts ? 'written' : 'uploaded'} (${formatBytes(blobs.bytesUploaded)}), ` +
      `${blobs.mounted} mounted, ${blobs.skipped} skipped, ${requests} requests ` +
      `in ${formatDuration(Date.now() - started)}`,
  );
  ctx.print(result.digest);
  return result;
}

/** The `--json` object of copy and index create: the contract's fields first, in order. */
function copyJson(result: CopyResult, requests: number): Record<string, unknown> {
  const { blobs } = result;
  return {
    digest: result.digest,
    mediaType: result.mediaType,
    blobs: {
      mounted: blobs.mounted,
      skipped: blobs.skipped,
      uploaded: blobs.uploaded,
      bytesUploaded: blobs.bytesUploaded,
      bytesDownloaded: blobs.bytesDownloaded,
    },
    requests,
    size: result.size,
    tags: result.tags,
  };
}
