import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

/** Options of {@link replaceFile}. */
export interface ReplaceFileOptions {
  /** Permissions of the new file; default 0o644. */
  mode?: number;
  signal?: AbortSignal;
}

/**
 * Write `source` to `path` through a temp file in the same directory, renamed over `path` only
 * once every byte is written and synced: a failure (a digest mismatch at the end of a stream,
 * Ctrl-C) leaves `path` as it was and no temp file behind. Resolves with the bytes written.
 */
export async function replaceFile(
  path: string,
  source: Readable | string,
  options: ReplaceFileOptions = {},
): Promise<number> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', options.mode ?? 0o644);
    let bytes: number;
    try {
      if (typeof source === 'string') {
        await handle.writeFile(source);
        bytes = Buffer.byteLength(source);
      } else {
        bytes = 0;
        for await (const chunk of source) {
          options.signal?.throwIfAborted();
          await handle.write(chunk);
          bytes += chunk.length;
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    return bytes;
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
