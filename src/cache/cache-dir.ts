import { readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlgorithm, isDigest } from '../digest/index.ts';

/** Default size budget of a `cacheDir`: the configs used longest ago go first beyond it. */
export const DEFAULT_CACHE_DIR_MAX_BYTES = 512 * 1024 * 1024;

/** Mark a kept config as used now (its modification time orders the pruning); best effort. */
export async function touchCached(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => {});
}

/**
 * Keep the blobs of the cache directory `dir` (an OCI layout) within `maxBytes`: the ones used
 * longest ago are removed first, never `keep` (the one just written), and nothing but blobs (a
 * concurrent writer's temp file stays). Best effort: a blob another process removes or reads
 * meanwhile costs that reader a fetch, nothing more.
 */
export async function pruneCacheDir(dir: string, maxBytes: number, keep: string): Promise<void> {
  const blobs = join(dir, 'blobs');
  const entries: { path: string; size: number; used: number }[] = [];
  try {
    for (const algorithm of (await readdir(blobs)).filter(isAlgorithm)) {
      for (const name of await readdir(join(blobs, algorithm))) {
        const digest = `${algorithm}:${name}`;
        if (!isDigest(digest)) continue;
        const path = join(blobs, algorithm, name);
        const info = await stat(path).catch(() => undefined);
        if (info?.isFile()) entries.push({ path, size: info.size, used: info.mtimeMs });
      }
    }
  } catch {
    return;
  }
  let total = entries.reduce((sum, entry) => sum + entry.size, 0);
  entries.sort((a, b) => a.used - b.used);
  for (const entry of entries) {
    if (total <= maxBytes) break;
    if (entry.path === keep) continue;
    await rm(entry.path, { force: true }).catch(() => {});
    total -= entry.size;
  }
}
