import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

/** Options of {@link replaceFile}. */
export interface ReplaceFileOptions {
  /** Permissions of the new file; default 0o644. */
  mode?: number;
  signal?: AbortSignal;
  /**
   * The temp file's path for a file in `dir` (same directory, hence same filesystem); default
   * `.NAME.RANDOM.tmp`. A content store names its own, to tell a dead writer's temp files.
   */
  tempIn?: (dir: string) => string;
}

/**
 * Replace `path` with `content` (text, bytes, or a stream) so that readers see the old file or
 * the new one, never a mix: write a temp file in the same directory, fsync it, rename it over
 * `path`, fsync the directory. A failure (a stream that errs, such as a digest mismatch at its
 * end; an abort) leaves `path` as it was and no temp file behind. Resolves with the bytes written.
 */
export async function replaceFile(
  path: string,
  content: string | Uint8Array | Readable,
  options: ReplaceFileOptions = {},
): Promise<number> {
  const dir = dirname(path);
  const tmp = options.tempIn
    ? options.tempIn(dir)
    : join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let bytes = 0;
  try {
    const handle = await open(tmp, 'wx', options.mode ?? 0o644);
    try {
      if (typeof content === 'string' || content instanceof Uint8Array) {
        await handle.writeFile(content);
        bytes = typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
      } else {
        for await (const chunk of content as AsyncIterable<Uint8Array>) {
          options.signal?.throwIfAborted();
          await handle.write(chunk);
          bytes += chunk.byteLength;
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await syncDir(dir);
  return bytes;
}

/**
 * Make a rename in `dir` durable. Best effort: some platforms and filesystems cannot open or
 * fsync a directory, and the rename itself has already happened.
 */
export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Durability of the directory entry is a bonus, not a requirement.
  }
}
