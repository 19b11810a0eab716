import { link, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestVerifier, parseDigest, verifies } from '../digest/index.ts';
import { countingStage } from '../util/counting.ts';
import { syncDir } from '../util/replace-file.ts';
import { tempPath } from './atomic.ts';
import { errorCode } from './errno.ts';
import { BlobUnknownError } from './errors.ts';

type FileHandle = Awaited<ReturnType<typeof open>>;

/** `link(2)` failures meaning "no hard links here" (FAT, some FUSE and network filesystems). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Options of {@link ingestBlob}. */
export interface IngestOptions {
  readonly digest: string;
  readonly size?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Called with the running total of bytes written. */
  readonly onProgress?: ((bytes: number) => void) | undefined;
  /** A wrong file holds the final name: replace it (atomically) instead of keeping it. */
  readonly replace?: boolean | undefined;
}

/**
 * `blobs/<alg>/<hex>` under `root`. The digest is validated first (InvalidDigestError), so an
 * outside string can never name a path out of `blobs/`.
 */
export function blobPath(root: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(root, 'blobs', algorithm, hex);
}

/** Written bytes after which the disk is asked to catch up, see {@link EarlyFlush}. */
const EARLY_FLUSH_BYTES = 8 * 1024 * 1024;

/**
 * Starts the disk writes of a blob while it still streams in: every few MiB, one `fdatasync` in
 * the background (never two at once). The fsync that ends the blob then finds little left to
 * write, instead of all of it at once at the end (a 4 x 64 MiB pull waited 100 ms there).
 */
class EarlyFlush {
  readonly #handle: FileHandle;
  #sinceFlush = 0;
  #flushing = false;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  advance(bytes: number): void {
    this.#sinceFlush += bytes;
    if (this.#flushing || this.#sinceFlush < EARLY_FLUSH_BYTES) return;
    this.#sinceFlush = 0;
    this.#flushing = true;
    // A failure shows again, and counts, in the fsync that ends the write.
    this.#handle
      .datasync()
      .catch(() => undefined)
      .finally(() => {
        this.#flushing = false;
      });
  }
}

/** Bytes of a blob that may wait for the write in flight, to go out with the next writev. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * Stream `source` into `path`: into a temp file in the same directory, through a
 * {@link DigestVerifier} (checking the size only when `source` verifies the digest itself), fsync, then a no-replace commit (a rename over `path` with `replace`).
 * Returns false when another writer committed the same digest first. On any failure the temp
 * file is removed and `source` destroyed.
 */
export async function ingestBlob(
  path: string,
  source: Readable,
  options: IngestOptions,
): Promise<boolean> {
  const dir = dirname(path);
  const tmp = tempPath(dir);
  let handle: FileHandle;
  try {
    await mkdir(dir, { recursive: true });
    handle = await open(tmp, 'wx', 0o644);
  } catch (error) {
    source.destroy();
    throw error;
  }
  try {
    let bytes = 0;
    const { onProgress } = options;
    const flusher = new EarlyFlush(handle);
    const stages = [
      countingStage((count) => {
        bytes += count;
        onProgress?.(bytes);
        flusher.advance(count);
      }),
    ];
    await pipeline(
      source,
      new DigestVerifier(options.digest, {
        size: options.size,
        hash: !verifies(source, options.digest),
      }),
      ...stages,
      // Chunks that arrive while a write is in flight go out together in one writev: with the
      // default 16 KiB mark every 64 KiB socket read was a write of its own, and a pull spent
      // more time handing writes to the thread pool than writing (bench/README.md).
      handle.createWriteStream({ flush: true, highWaterMark: WRITE_BATCH_BYTES }),
      { signal: options.signal },
    );
    if (options.replace) {
      await rename(tmp, path);
      await syncDir(dir);
      return true;
    }
    return await commit(tmp, path);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
}

/**
 * Give the verified temp file its final name without ever replacing an existing blob: `link`
 * fails with EEXIST when a concurrent writer won. Where hard links are unsupported, `rename`
 * is used; it may then replace a blob, but only with identical verified bytes.
 */
async function commit(tmp: string, path: string): Promise<boolean> {
  let written: boolean;
  try {
    await link(tmp, path);
    written = true;
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EEXIST') written = false;
    else if (code !== undefined && NO_HARD_LINKS.has(code)) {
      await rename(tmp, path);
      written = true;
    } else throw error;
  }
  await rm(tmp, { force: true });
  if (written) await syncDir(dirname(path));
  return written;
}

/** Open a blob for reading, mapping a missing file to {@link BlobUnknownError}. */
export async function openBlob(path: string, digest: string, root: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') throw new BlobUnknownError(digest, root);
    throw error;
  }
}

/**
 * Read size of {@link blobReadStream}: 1 MiB chunks serve a 256 MiB blob over HTTP two to four
 * times as fast as the default 64 KiB (cache service bench), for 1 MiB of buffer per open read.
 */
const READ_CHUNK = 1024 * 1024;

/** A stream of a blob's bytes from `start` to `end` (inclusive, as in `fs.createReadStream`). */
export function blobReadStream(
  path: string,
  digest: string,
  root: string,
  range: { start?: number | undefined; end?: number | undefined },
): Readable {
  async function* read() {
    const handle = await openBlob(path, digest, root);
    yield* handle.createReadStream({
      start: range.start,
      end: range.end,
      highWaterMark: READ_CHUNK,
    });
  }
  return Readable.from(read(), { objectMode: false });
}
