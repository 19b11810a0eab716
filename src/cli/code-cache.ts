import { createHash } from 'node:crypto';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/** Cache files not used for this long are removed when a new one is written. */
const STALE_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Where the CLI keeps V8's compiled code of its bundle: `OCIFERRY_CODE_CACHE` when set (`0` or
 * `off`: nowhere), else `ociferry/code` under the user's cache directory (`XDG_CACHE_HOME`,
 * `~/.cache`, `%LOCALAPPDATA%`).
 */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const setting = env.OCIFERRY_CODE_CACHE;
  if (setting === '0' || setting === 'off') return undefined;
  if (setting) return setting;
  const base =
    env.XDG_CACHE_HOME ||
    (process.platform === 'win32' ? env.LOCALAPPDATA : undefined) ||
    path.join(env.HOME || homedir(), '.cache');
  return path.join(base, 'ociferry', 'code');
}

/** A loaded bundle and how to keep its compiled code for the next run. */
export interface LoadedBundle {
  readonly exports: unknown;
  /**
   * Write the code cache when there was none or V8 refused it (call once the work is done, so
   * that it holds the functions the run compiled); never throws.
   */
  save(): void;
}

/**
 * Run the CommonJS bundle `file` with V8's code cache from `cacheDir`, as Node 22 does with
 * `module.enableCompileCache()` (not in Node 20): the parse and the compile of every function
 * used are read from disk instead of redone, about 20 ms of each start here. A cache holds the
 * functions compiled by the run that wrote it, so each `variant` (a CLI command) has its own.
 * V8 checks that a cache matches its version and flags; the cache file's name adds the bundle's
 * path, size and time and the runtime's flags, so a rebuilt or moved bundle gets a cache of its
 * own. Without a usable directory (not ours, writable by others, read-only) it runs uncached.
 */
export function loadBundle(file: URL, cacheDir: string | undefined, variant: string): LoadedBundle {
  const filename = fileURLToPath(file);
  const source = readFileSync(filename, 'utf8');
  const cacheFile = cacheDir === undefined ? undefined : cachePath(cacheDir, filename, variant);
  const cachedData = cacheFile === undefined ? undefined : readCache(cacheFile);
  const script = new Script(
    `(function (exports, require, module, __filename, __dirname) {${source}\n})`,
    { filename, cachedData },
  );
  const module = { exports: {} };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper(module.exports, createRequire(filename), module, filename, path.dirname(filename));
  return {
    exports: module.exports,
    save() {
      if (cacheFile === undefined || (cachedData !== undefined && !script.cachedDataRejected)) {
        return;
      }
      writeCache(cacheFile, script.createCachedData());
    },
  };
}

function cachePath(cacheDir: string, filename: string, variant: string): string {
  const stat = statSync(filename);
  const key = [
    filename,
    variant,
    stat.size,
    stat.mtimeMs,
    process.version,
    process.arch,
    process.execArgv.join(' '),
    process.env.NODE_OPTIONS ?? '',
  ].join('\0');
  return path.join(cacheDir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.v8`);
}

/** The cache, when the directory is safe to take code from (ours, not writable by others). */
function readCache(cacheFile: string): Buffer | undefined {
  try {
    if (!trusted(path.dirname(cacheFile))) return undefined;
    return readFileSync(cacheFile);
  } catch {
    return undefined;
  }
}

function trusted(dir: string): boolean {
  if (typeof process.getuid !== 'function') return true;
  const stat = statSync(dir);
  return stat.uid === process.getuid() && (stat.mode & 0o022) === 0;
}

function writeCache(cacheFile: string, data: Buffer): void {
  const dir = path.dirname(cacheFile);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!trusted(dir)) return;
    const temp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(temp, data, { mode: 0o600 });
    renameSync(temp, cacheFile);
    removeStale(dir, cacheFile);
  } catch {
    // A cache that cannot be written costs the next start its compile time, nothing more.
  }
}

function removeStale(dir: string, keep: string): void {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (file === keep) continue;
    if (now - statSync(file).mtimeMs > STALE_MS) rmSync(file, { force: true });
  }
}
