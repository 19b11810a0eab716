import type { Stats } from 'node:fs';
import {
  chmod,
  type FileHandle,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  rm,
  symlink,
  unlink,
  utimes,
} from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHasher, type Hasher, type ParsedDigest, parseDigest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { chooseCompression, createDecompressor, peek, SNIFF_BYTES } from './decompress.ts';
import { ExtractError } from './extract-error.ts';
import { readTar, type TarEntry } from './tar.ts';
import { type Whiteout, whiteoutOf } from './whiteout.ts';

export { ExtractError, type ExtractErrorCode } from './extract-error.ts';

/** What {@link extract} needs of an image: its layers, their diff_ids and a way to read them. */
export interface ExtractableImage {
  /** Layer descriptors, bottom-up. */
  readonly layers: readonly Descriptor[];
  /** diff_ids from the image config, one per layer. */
  diffIds(options?: { signal?: AbortSignal }): Promise<readonly string[]>;
  /** Verified stream of a layer blob (compressed as stored). */
  openLayer(layer: Descriptor, options?: { signal?: AbortSignal }): Promise<Readable>;
}

/** Reported by {@link extract} after each layer. */
export interface LayerExtracted {
  readonly index: number;
  readonly digest: string;
  /** Tar entries applied (whiteouts included, PAX and GNU metadata entries not). */
  readonly entries: number;
  /** Devices and FIFOs that were not created (Node.js has no mknod). */
  readonly skipped: number;
}

/** Options of {@link extract}. */
export interface ExtractOptions {
  signal?: AbortSignal;
  /** Called after each layer has been applied and its diff_id checked. */
  onLayer?: (event: LayerExtracted) => void;
  /** Give entries the uid/gid of the archive (default false). Honoured only when running as root. */
  preserveOwnership?: boolean;
}

/** What {@link extract} did. */
export interface ExtractResult {
  readonly layers: number;
  readonly entries: number;
  /** Devices and FIFOs that were not created. */
  readonly skipped: number;
}

/**
 * Apply an image's layers in order into `dir` (created if missing), as a container runtime
 * would: gzip, zstd (Node.js >= 22.15) or plain tar layers; OCI whiteouts (`.wh.NAME` deletes
 * NAME from lower layers, `.wh..wh..opq` hides what lower layers put in a directory); modes,
 * mtimes, symlinks and hard links; ownership only when asked and running as root. Devices and
 * FIFOs are counted in `skipped`, not created.
 *
 * Nothing is written outside `dir`: absolute names are taken relative to it (as docker does),
 * an entry whose `..` climbs out, or whose path or hard-link target passes through a symlink,
 * fails with `TAR_ENTRY_UNSAFE`. Symlinks pointing anywhere are created, never followed.
 *
 * Each layer's diff_id is checked as it streams; the check completes at the end of the layer, so
 * on `DIFF_ID_MISMATCH` (as on any error) `dir` is left partly extracted and should be discarded.
 */
export async function extract(
  image: ExtractableImage,
  dir: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  const { signal, onLayer, preserveOwnership = false } = options;
  signal?.throwIfAborted();
  const diffIds = await image.diffIds({ signal });
  if (diffIds.length !== image.layers.length) {
    throw new ExtractError(
      'DIFF_ID_MISMATCH',
      `the image config lists ${diffIds.length} diff_ids for ${image.layers.length} layers`,
    );
  }
  const plan = image.layers.map((layer, i) => ({ layer, diffId: parseDigest(diffIds[i] ?? '') }));
  const root = path.resolve(dir);
  await mkdir(root, { recursive: true });
  const tree = new Tree(root, preserveOwnership && process.getuid?.() === 0);
  let entries = 0;
  let skipped = 0;
  for (const [index, { layer, diffId }] of plan.entries()) {
    const counts = await extractLayer(image, layer, diffId, tree, index, signal);
    entries += counts.entries;
    skipped += counts.skipped;
    onLayer?.({ index, digest: layer.digest, ...counts });
  }
  await tree.finish();
  return { layers: image.layers.length, entries, skipped };
}

async function extractLayer(
  image: ExtractableImage,
  layer: Descriptor,
  diffId: ParsedDigest,
  tree: Tree,
  index: number,
  signal: AbortSignal | undefined,
): Promise<{ entries: number; skipped: number }> {
  const where = `layer ${index} (${layer.digest})`;
  signal?.throwIfAborted();
  const stream = await image.openLayer(layer, { signal });
  // Destroying the source fails every stage downstream, wherever it is waiting.
  const abort = () => stream.destroy(signal?.reason);
  signal?.addEventListener('abort', abort, { once: true });
  let decompressor: Transform | undefined;
  // Errors of the source and of the file system: they pass through. The pipeline destroys every
  // stage with the first error, so the decompressor's own failures are the ones not in here.
  const elsewhere = new WeakSet<object>();
  const seen = (err: unknown) => {
    if (typeof err === 'object' && err !== null) elsewhere.add(err);
    return err;
  };
  // The entry being written when a stage fails: awaited before failing, so no write goes on
  // behind the caller's back.
  let applying: Promise<void> | undefined;
  try {
    signal?.throwIfAborted();
    const { head, chunks } = await peek(stream, SNIFF_BYTES);
    decompressor = createDecompressor(chooseCompression(layer.mediaType, head));
    const hasher = createHasher(diffId.algorithm);
    const counts = { entries: 0, skipped: 0 };
    const apply = (tar: AsyncIterable<Buffer>) => {
      applying = (async () => {
        tree.beginLayer();
        for await (const entry of readTar(hashed(tar, hasher))) {
          counts.entries++;
          const applied = await tree.apply(entry).catch((err: unknown) => {
            throw seen(err);
          });
          if (applied === 'skipped') counts.skipped++;
        }
      })();
      return applying;
    };
    const source = observed(chunks, seen);
    if (decompressor) await pipeline(source, decompressor, apply);
    else await pipeline(source, apply);
    const actual = hasher.digest();
    if (actual !== diffId.digest) {
      throw new ExtractError(
        'DIFF_ID_MISMATCH',
        `${where} unpacks to ${actual}, but the image config says ${diffId.digest}; ` +
          'the directory is partly extracted and should be discarded',
        { layer: layer.digest },
      );
    }
    return counts;
  } catch (err) {
    await applying?.catch(() => undefined);
    const corrupt = decompressor !== undefined && !(err instanceof Object && elsewhere.has(err));
    throw inLayer(err, where, layer.digest, corrupt);
  } finally {
    signal?.removeEventListener('abort', abort);
    stream.destroy();
  }
}

/** Attach the layer to an error; `corrupt` when it came from decompressing. */
function inLayer(err: unknown, where: string, digest: string, corrupt: boolean): unknown {
  if (err instanceof ExtractError) {
    if (err.layer !== undefined) return err;
    return new ExtractError(err.code, `${where}: ${err.message}`, {
      cause: err,
      layer: digest,
      ...(err.entry === undefined ? {} : { entry: err.entry }),
    });
  }
  if (corrupt) {
    const reason = err instanceof Error ? err.message : String(err);
    return new ExtractError('LAYER_CORRUPT', `${where} does not decompress: ${reason}`, {
      cause: err,
      layer: digest,
    });
  }
  return err;
}

/** `source`, reporting any error it throws to `seen` first. */
async function* observed<T>(
  source: AsyncIterable<T>,
  seen: (err: unknown) => void,
): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    seen(err);
    throw err;
  }
}

async function* hashed(source: AsyncIterable<Buffer>, hasher: Hasher): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hasher.update(chunk);
    yield chunk;
  }
}

/**
 * The directory being extracted into. Paths are kept relative, as `/`-joined components with no
 * `.` or `..`; every parent is checked to be a real directory before anything is written below it.
 */
class Tree {
  readonly #root: string;
  readonly #chown: boolean;
  /** Paths known to be real directories (not symlinks), verified or created by us. */
  readonly #dirs = new Set<string>();
  /** Directory modes and mtimes, applied last so that writing below them does not undo them. */
  readonly #dirMeta = new Map<string, { mode: number; mtime: number }>();
  /** Paths the current layer wrote, with their ancestors: what an opaque whiteout keeps. */
  readonly #layer = new Set<string>();

  constructor(root: string, chown: boolean) {
    this.#root = root;
    this.#chown = chown;
  }

  beginLayer(): void {
    this.#layer.clear();
  }

  /** Apply one entry; 'skipped' when it is a device or FIFO that cannot be created. */
  async apply(entry: TarEntry): Promise<'applied' | 'skipped'> {
    const parts = this.#parts(entry.path, entry.path);
    const name = parts.at(-1);
    // The root itself (`./`): the caller's directory keeps its own mode and times.
    if (name === undefined) return 'applied';
    const parent = parts.slice(0, -1);
    const whiteout = whiteoutOf(name);
    if (whiteout) {
      await this.#whiteout(entry.path, parent, whiteout);
      return 'applied';
    }
    await this.#parent(entry.path, 'path', parent, true);
    let key = '';
    for (const part of parts) {
      key = key === '' ? part : `${key}/${part}`;
      this.#layer.add(key);
    }
    const abs = this.#abs(key);
    switch (entry.type) {
      case 'file':
        await this.#clear(key);
        await this.#file(entry, abs);
        return 'applied';
      case 'directory':
        await this.#directory(entry, key, abs);
        return 'applied';
      case 'symlink':
        if (entry.linkpath === '') throw invalidEntry(entry.path, 'is a symlink without a target');
        await this.#clear(key);
        await symlink(entry.linkpath, abs);
        if (this.#chown) await lchown(abs, entry.uid, entry.gid);
        await lutimes(abs, entry.mtime, entry.mtime);
        return 'applied';
      case 'hardlink':
        await this.#hardlink(entry, key, abs);
        return 'applied';
      default:
        await this.#clear(key);
        return 'skipped';
    }
  }

  /** Set directory modes and mtimes, deepest first (a parent may lose its search permission). */
  async finish(): Promise<void> {
    for (const key of [...this.#dirMeta.keys()].sort().reverse()) {
      const meta = this.#dirMeta.get(key);
      if (meta === undefined) continue;
      const abs = this.#abs(key);
      await chmod(abs, meta.mode);
      await utimes(abs, meta.mtime, meta.mtime);
    }
  }

  async #file(entry: TarEntry, abs: string): Promise<void> {
    // O_EXCL: never opens through a symlink someone left at this name.
    const handle = await open(abs, 'wx', 0o600);
    try {
      for await (const chunk of entry.body()) await writeAll(handle, chunk);
      if (this.#chown) await handle.chown(entry.uid, entry.gid);
      await handle.chmod(entry.mode);
      await handle.utimes(entry.mtime, entry.mtime);
    } finally {
      await handle.close();
    }
  }

  async #directory(entry: TarEntry, key: string, abs: string): Promise<void> {
    const existing = await lstatIfExists(abs);
    if (!existing?.isDirectory()) {
      if (existing) await this.#remove(key, existing);
      // Owner-writable until finish(), so that later entries can still be written below it.
      await mkdir(abs, { mode: 0o700 });
    }
    this.#dirs.add(key);
    if (this.#chown) await lchown(abs, entry.uid, entry.gid);
    this.#dirMeta.set(key, { mode: entry.mode, mtime: entry.mtime });
  }

  async #hardlink(entry: TarEntry, key: string, abs: string): Promise<void> {
    const target = this.#parts(entry.path, entry.linkpath, 'hard link target');
    const targetKey = target.join('/');
    if (targetKey === key) return;
    const found =
      target.length > 0 &&
      (await this.#parent(entry.path, 'hard link target', target.slice(0, -1), false));
    const stats = found ? await lstatIfExists(this.#abs(targetKey)) : undefined;
    if (stats === undefined || stats.isDirectory()) {
      throw invalidEntry(
        entry.path,
        `links to ${JSON.stringify(entry.linkpath)}, which is ${stats ? 'a directory' : 'not in the tree'}`,
      );
    }
    await this.#clear(key);
    const targetAbs = this.#abs(targetKey);
    // link(2) follows a symlink on some systems; a copy of the link is the same thing.
    if (stats.isSymbolicLink()) await symlink(await readlink(targetAbs), abs);
    else await link(targetAbs, abs);
  }

  async #whiteout(entryPath: string, parent: string[], whiteout: Whiteout): Promise<void> {
    if (whiteout.kind === 'meta') return;
    if (whiteout.kind === 'delete' && ['', '.', '..'].includes(whiteout.name)) {
      throw unsafe(entryPath, 'its whiteout names no sibling to delete');
    }
    if (!(await this.#parent(entryPath, 'whiteout', parent, false))) return;
    if (whiteout.kind === 'opaque') {
      await this.#clearLower(parent.join('/'));
      return;
    }
    const key = [...parent, whiteout.name].join('/');
    // A whiteout only hides lower layers; what its own layer wrote stays.
    if (!this.#layer.has(key)) await this.#clear(key);
  }

  /** Below directory `key`, remove everything the current layer did not write. */
  async #clearLower(key: string): Promise<void> {
    for (const name of await readdir(this.#abs(key))) {
      const child = key === '' ? name : `${key}/${name}`;
      if (!this.#layer.has(child)) await this.#clear(child);
      else if ((await lstat(this.#abs(child))).isDirectory()) await this.#clearLower(child);
    }
  }

  /**
   * Make sure `parts` is a chain of real directories, creating missing ones when `create`.
   * Returns false if one is missing (or not a directory) and `create` is off. Always fails on a
   * symlink: nothing is ever written, linked or deleted through one.
   */
  async #parent(
    entryPath: string,
    what: string,
    parts: readonly string[],
    create: boolean,
  ): Promise<boolean> {
    let key = '';
    for (const part of parts) {
      key = key === '' ? part : `${key}/${part}`;
      if (this.#dirs.has(key)) continue;
      const abs = this.#abs(key);
      const stats = await lstatIfExists(abs);
      if (stats?.isSymbolicLink()) {
        throw unsafe(entryPath, `its ${what} goes through the symlink ${JSON.stringify(key)}`);
      }
      if (!stats?.isDirectory()) {
        if (!create) return false;
        if (stats) throw invalidEntry(entryPath, `needs ${JSON.stringify(key)} to be a directory`);
        await mkdir(abs, { mode: 0o755 });
      }
      this.#dirs.add(key);
    }
    return true;
  }

  /** Remove whatever is at `key`, if anything (never following a symlink). */
  async #clear(key: string): Promise<void> {
    const stats = await lstatIfExists(this.#abs(key));
    if (stats) await this.#remove(key, stats);
  }

  async #remove(key: string, stats: Stats): Promise<void> {
    const abs = this.#abs(key);
    if (!stats.isDirectory()) {
      await unlink(abs);
      return;
    }
    await rm(abs, { recursive: true, force: true });
    this.#dirs.clear();
    for (const dir of this.#dirMeta.keys()) {
      if (dir === key || dir.startsWith(`${key}/`)) this.#dirMeta.delete(dir);
    }
  }

  /** Components of an archive path relative to the root; refuses `..` that climbs out. */
  #parts(entryPath: string, name: string, what = 'path'): string[] {
    const parts: string[] = [];
    for (const part of name.split('/')) {
      if (part === '' || part === '.') continue;
      if (part !== '..') parts.push(part);
      else if (parts.pop() === undefined) {
        throw unsafe(entryPath, `its ${what} ${JSON.stringify(name)} climbs out with ".."`);
      }
    }
    return parts;
  }

  #abs(key: string): string {
    return key === '' ? this.#root : path.join(this.#root, key);
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  for (let done = 0; done < chunk.length; ) {
    done += (await handle.write(chunk, done)).bytesWritten;
  }
}

async function lstatIfExists(abs: string): Promise<Stats | undefined> {
  try {
    return await lstat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function unsafe(entryPath: string, reason: string): ExtractError {
  return new ExtractError(
    'TAR_ENTRY_UNSAFE',
    `tar entry ${JSON.stringify(entryPath)}: ${reason}; refusing to write outside the directory`,
    { entry: entryPath },
  );
}

function invalidEntry(entryPath: string, reason: string): ExtractError {
  return new ExtractError('TAR_INVALID', `tar entry ${JSON.stringify(entryPath)} ${reason}`, {
    entry: entryPath,
  });
}
