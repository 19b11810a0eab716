import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlgorithm, isDigest } from '../digest/index.ts';
import { isOrphanTemp, TEMP_PREFIX } from './atomic.ts';
import { errorCode } from './errno.ts';
import { LayoutInvalidError } from './errors.ts';
import { type Descriptor, LINKING_MEDIA_TYPES } from './types.ts';
import { isObject, parseDescriptor, parseJson } from './validate.ts';

/** Options of `LayoutStore.gc`. */
export interface GcOptions {
  signal?: AbortSignal;
  /**
   * Temp files (`.tmp-*`) of writers that are gone are removed: at once when their name shows a
   * dead process of this host, otherwise once untouched for this long (younger ones may belong
   * to a write in progress on another host). Default one hour.
   */
  tempMaxAgeMs?: number;
}

/** What a garbage collection removed. */
export interface GcResult {
  /** Digests of the deleted blobs, sorted. */
  deleted: string[];
  /** Bytes of the deleted blobs and temp files. */
  bytesFreed: number;
  /** How many stale temp files were removed. */
  tempFilesRemoved: number;
}

/** A blob as a layout holds it on disk. */
export interface StoredBlob {
  readonly digest: string;
  readonly size: number;
  /** When it was last written or marked used (`LayoutStore.touchBlob`), in ms since the epoch. */
  readonly usedMs: number;
}

/** Options of `LayoutStore.prune`. */
export interface PruneOptions {
  /** Size the blobs may take together; the least recently used go first beyond it. */
  maxBytes: number;
  /** Digests never deleted (a blob just written), besides those `index.json` reaches. */
  keep?: Iterable<string>;
  signal?: AbortSignal;
}

/** What a prune removed. */
export interface PruneResult {
  /** Digests of the deleted blobs, least recently used first. */
  deleted: string[];
  bytesFreed: number;
}

/** Loads a manifest or index blob; undefined when the store does not have it. */
export type ManifestLoader = (desc: Descriptor) => Promise<Buffer | undefined>;

const CHILD_LISTS = ['layers', 'manifests', 'blobs'] as const;
const CHILD_SINGLES = ['config', 'subject'] as const;
const DEFAULT_TEMP_MAX_AGE_MS = 60 * 60 * 1000;

/**
 * Digests reachable from `roots`, following manifests and indexes (config, layers, manifests,
 * blobs, subject). Each digest is loaded once (visited set), so shared subtrees cost nothing
 * extra; unknown media types are leaves; a malformed manifest throws rather than letting its
 * children look unreachable.
 */
export async function reachable(
  roots: readonly Descriptor[],
  load: ManifestLoader,
  signal?: AbortSignal,
): Promise<Set<string>> {
  const seen = new Set<string>();
  const stack = [...roots];
  for (let desc = stack.pop(); desc !== undefined; desc = stack.pop()) {
    if (seen.has(desc.digest)) continue;
    seen.add(desc.digest);
    if (!LINKING_MEDIA_TYPES.has(desc.mediaType)) continue;
    signal?.throwIfAborted();
    const bytes = await load(desc);
    if (bytes !== undefined) stack.push(...children(bytes, `blob ${desc.digest}`));
  }
  return seen;
}

function children(bytes: Buffer, where: string): Descriptor[] {
  const doc = parseJson(bytes.toString('utf8'), where);
  if (!isObject(doc)) throw new LayoutInvalidError(where, 'manifest is not a JSON object');
  const found: Descriptor[] = [];
  for (const key of CHILD_SINGLES) {
    if (doc[key] !== undefined) found.push(parseDescriptor(doc[key], where, key));
  }
  for (const key of CHILD_LISTS) {
    const list = doc[key];
    if (!Array.isArray(list)) continue;
    list.forEach((entry, i) => {
      found.push(parseDescriptor(entry, where, `${key}[${i}]`));
    });
  }
  return found;
}

/**
 * Delete every `blobs/<alg>/<hex>` of `root` not in `keep`, and the temp files of writers that
 * are gone (see {@link sweepTemps}). Names that are neither are left alone.
 */
export async function sweep(
  root: string,
  keep: ReadonlySet<string>,
  options: GcOptions = {},
): Promise<GcResult> {
  const { signal, tempMaxAgeMs = DEFAULT_TEMP_MAX_AGE_MS } = options;
  const temps = await sweepTemps(root, { maxAgeMs: tempMaxAgeMs, signal });
  const result: GcResult = {
    deleted: [],
    bytesFreed: temps.bytes,
    tempFilesRemoved: temps.removed,
  };
  for await (const blob of storedBlobs(root, signal)) {
    if (keep.has(blob.digest)) continue;
    if (await removed(blobFile(root, blob.digest))) {
      result.deleted.push(blob.digest);
      result.bytesFreed += blob.size;
    }
  }
  result.deleted.sort();
  return result;
}

/**
 * Delete the blobs of `root` not in `keep`, the least recently used first, until those left take
 * `maxBytes` at most. Temp files and other names are left alone.
 */
export async function pruneBlobs(
  root: string,
  keep: ReadonlySet<string>,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<PruneResult> {
  const blobs: StoredBlob[] = [];
  for await (const blob of storedBlobs(root, signal)) blobs.push(blob);
  let total = blobs.reduce((sum, blob) => sum + blob.size, 0);
  blobs.sort((a, b) => a.usedMs - b.usedMs);
  const result: PruneResult = { deleted: [], bytesFreed: 0 };
  for (const blob of blobs) {
    if (total <= maxBytes) break;
    if (keep.has(blob.digest)) continue;
    signal?.throwIfAborted();
    total -= blob.size;
    if (await removed(blobFile(root, blob.digest))) {
      result.deleted.push(blob.digest);
      result.bytesFreed += blob.size;
    }
  }
  return result;
}

/**
 * Every blob file of `root` (`blobs/<alg>/<hex>` with a valid digest for a name), with its size
 * and last use; names that are no digest (temp files) and what is not a file are skipped.
 */
export async function* storedBlobs(root: string, signal?: AbortSignal): AsyncGenerator<StoredBlob> {
  for (const dir of await blobDirs(root)) {
    for (const name of await list(dir.path)) {
      signal?.throwIfAborted();
      const digest = `${dir.algorithm}:${name}`;
      if (!isDigest(digest)) continue;
      const stats = await lstatOrUndefined(join(dir.path, name));
      if (stats?.isFile()) yield { digest, size: stats.size, usedMs: stats.mtimeMs };
    }
  }
}

/** `blobs/<alg>/<hex>` of a digest listed from disk (valid, so safe as a path). */
function blobFile(root: string, digest: string): string {
  const [algorithm = '', hex = ''] = digest.split(':');
  return join(root, 'blobs', algorithm, hex);
}

/**
 * Remove the temp files in `root` and `blobs/<alg>/` that no writer will finish: those whose
 * name shows a dead process of this host, and those untouched for `maxAgeMs` (default: never
 * judged by age). A live writer's temp file is never touched.
 */
export async function sweepTemps(
  root: string,
  options: { maxAgeMs?: number; signal?: AbortSignal | undefined } = {},
): Promise<{ removed: number; bytes: number }> {
  const { maxAgeMs = Number.POSITIVE_INFINITY, signal } = options;
  const swept = { removed: 0, bytes: 0 };
  for (const dir of [root, ...(await blobDirs(root)).map((d) => d.path)]) {
    for (const name of await list(dir)) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      signal?.throwIfAborted();
      const path = join(dir, name);
      const stats = await lstatOrUndefined(path);
      if (!stats?.isFile()) continue;
      if (!isOrphanTemp(name) && !(Date.now() - stats.mtimeMs >= maxAgeMs)) continue;
      if (await removed(path)) {
        swept.removed++;
        swept.bytes += stats.size;
      }
    }
  }
  return swept;
}

/** The `blobs/<alg>` directories of `root`. */
async function blobDirs(root: string): Promise<{ algorithm: string; path: string }[]> {
  const blobs = join(root, 'blobs');
  return (await list(blobs))
    .filter(isAlgorithm)
    .map((algorithm) => ({ algorithm, path: join(blobs, algorithm) }));
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return [];
    throw error;
  }
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** Unlink `path`; false when someone else removed it first. */
export async function removed(path: string): Promise<boolean> {
  try {
    await rm(path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}
