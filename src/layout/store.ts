import { mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { DigestMismatchError, digestBytes, parseDigest } from '../digest/index.ts';
import { SizeExceededError } from '../errors.ts';
import { Limiter } from '../util/limiter.ts';
import { writeFileAtomic } from './atomic.ts';
import { blobPath, blobReadStream, ingestBlob, openBlob } from './blobs.ts';
import { errorCode } from './errno.ts';
import { BlobUnknownError, LayoutError, LayoutInvalidError } from './errors.ts';
import { type GcOptions, type GcResult, reachable, sweep } from './gc.ts';
import { withFileLock } from './lock.ts';
import { assertTag, findTag, listTags, withoutTag, withTag } from './tags.ts';
import { type Descriptor, type ImageIndex, MediaTypes } from './types.ts';
import { isObject, parseDescriptor, parseImageIndex, parseJson } from './validate.ts';

/** Options of {@link LayoutStore.open}. */
export interface OpenOptions {
  /** Create the directory, `oci-layout`, `blobs/` and `index.json` when missing. Default true. */
  create?: boolean;
  /** How long an index update waits for `index.json.lock` held by another writer. Default 10 s. */
  lockTimeoutMs?: number;
  /** A lock not refreshed for this long is broken as stale (holders refresh it). Default 30 s. */
  staleLockMs?: number;
}

/** Bytes to store: a stream, or a function opening one only if the blob is really missing. */
export type LayoutBlobSource = Readable | (() => Readable | Promise<Readable>);

/** Options of {@link LayoutStore.writeBlob}. */
export interface WriteBlobOptions {
  signal?: AbortSignal;
  /** Called with the running total of bytes written. */
  onProgress?: (bytes: number) => void;
  /**
   * The source is a verifying stream of this very digest (a provider's whole read), so the bytes
   * are not hashed a second time; the size is still checked, and a source error still aborts.
   */
  sourceVerified?: boolean;
}

/** Options of {@link LayoutStore.readBytes}. */
export interface ReadBytesOptions {
  /** Refuse blobs bigger than this with SIZE_EXCEEDED. Default 4 MiB (the manifest cap). */
  limit?: number;
  signal?: AbortSignal;
}

/** Options of the calls that update `index.json`. */
export interface UpdateOptions {
  signal?: AbortSignal;
}

const LAYOUT_VERSION = '1.0.0';
const READ_ONLY_CODES = new Set(['EROFS', 'EACCES', 'EPERM']);
const DEFAULT_READ_LIMIT = 4 * 1024 * 1024;
const EMPTY_INDEX: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };

/**
 * An OCI image layout directory used as a content store: blobs are written atomically after
 * digest verification, `index.json` is updated under `index.json.lock` (safe across processes),
 * and reads never write, so read-only layouts work.
 */
export class LayoutStore {
  /** Absolute path of the layout directory. */
  readonly dir: string;
  readonly #lockTimeoutMs: number;
  readonly #staleLockMs: number;
  /** Queues this store's own index updates here instead of spinning on the lock file. */
  readonly #serial = new Limiter(1);

  private constructor(dir: string, options: OpenOptions) {
    this.dir = dir;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
    this.#staleLockMs = options.staleLockMs ?? 30_000;
  }

  /** Open the layout at `dir`; creates what is missing unless `create: false` (LAYOUT_INVALID). */
  static async open(dir: string, options: OpenOptions = {}): Promise<LayoutStore> {
    const store = new LayoutStore(resolve(dir), options);
    if (options.create ?? true) await store.#create();
    else await store.#checkLayoutFile();
    return store;
  }

  get #indexPath(): string {
    return join(this.dir, 'index.json');
  }

  get #layoutPath(): string {
    return join(this.dir, 'oci-layout');
  }

  /** True when the store holds the blob `digest`. */
  async has(digest: string): Promise<boolean> {
    return (await this.info(digest)) !== undefined;
  }

  /** Digest and size of a stored blob, from the filesystem alone; undefined when absent. */
  async info(digest: string): Promise<{ digest: string; size: number } | undefined> {
    const path = blobPath(this.dir, digest);
    try {
      const stats = await stat(path);
      return stats.isFile() ? { digest, size: stats.size } : undefined;
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return undefined;
      throw error;
    }
  }

  /**
   * Stream a blob into the store, verifying its digest (and size when given); nothing appears
   * under the final name unless it is complete and verified. Returns false when the blob was
   * already present: then a `body` function is never called, and a `body` stream is left
   * untouched and unconsumed (the caller destroys it; pass a function to avoid opening one).
   * Once a write starts the stream is consumed or destroyed. Two writers of one digest at
   * once both succeed; one gets false.
   */
  async writeBlob(
    desc: { digest: string; size?: number },
    body: LayoutBlobSource,
    options: WriteBlobOptions = {},
  ): Promise<boolean> {
    const path = blobPath(this.dir, desc.digest);
    if (desc.size !== undefined && !(Number.isSafeInteger(desc.size) && desc.size >= 0)) {
      throw new RangeError(`size must be a non-negative integer, got ${desc.size}`);
    }
    options.signal?.throwIfAborted();
    if (await this.has(desc.digest)) return false;
    const source = typeof body === 'function' ? await body() : body;
    return ingestBlob(path, source, { ...options, digest: desc.digest, size: desc.size });
  }

  /** {@link writeBlob} for bytes already in memory (manifests, configs). */
  writeBytes(
    desc: { digest: string; size?: number },
    bytes: Uint8Array,
    options: WriteBlobOptions = {},
  ): Promise<boolean> {
    return this.writeBlob(desc, () => Readable.from([bytes]), options);
  }

  /**
   * Stream a stored blob, optionally bytes `start` to `end` (inclusive). Emits BLOB_UNKNOWN when
   * absent; the bytes were verified when written and are not re-hashed here.
   */
  readBlob(digest: string, options: { start?: number; end?: number } = {}): Readable {
    return blobReadStream(blobPath(this.dir, digest), digest, this.dir, options);
  }

  /** A small blob in memory, digest re-verified; SIZE_EXCEEDED above `limit` before reading it. */
  async readBytes(digest: string, options: ReadBytesOptions = {}): Promise<Buffer> {
    const { limit = DEFAULT_READ_LIMIT, signal } = options;
    const handle = await openBlob(blobPath(this.dir, digest), digest, this.dir);
    try {
      const { size } = await handle.stat();
      if (size > limit) throw new SizeExceededError({ what: `blob ${digest}`, size, limit });
      const data = await handle.readFile({ signal });
      const actual = digestBytes(data, parseDigest(digest).algorithm);
      if (actual !== digest) {
        throw new DigestMismatchError({
          expected: digest,
          actual,
          source: `OCI layout ${this.dir}`,
        });
      }
      return data;
    } finally {
      await handle.close();
    }
  }

  /** `index.json`, parsed and validated (LAYOUT_INVALID when malformed; empty when absent). */
  async index(): Promise<ImageIndex> {
    return (await this.#readIndex()).index;
  }

  /** The entry a tag names: `io.containerd.image.name` first, then `...image.ref.name`. */
  async resolveTag(tag: string): Promise<Descriptor | undefined> {
    return findTag((await this.index()).manifests, tag);
  }

  /** Every name in `index.json` (ref.name and io.containerd.image.name), in index order. */
  async tags(): Promise<string[]> {
    return listTags((await this.index()).manifests);
  }

  /** Point `tag` at `desc` (a stored blob), replacing the entry that held the tag. */
  async putTag(tag: string, desc: Descriptor, options: UpdateOptions = {}): Promise<void> {
    assertTag(tag);
    await this.#requireBlob(desc, `putTag(${tag})`);
    await this.#updateIndex((manifests) => withTag(manifests, tag, desc), options.signal);
  }

  /** Add an untagged entry for `desc` (a stored blob) unless an entry for its digest exists. */
  async addManifest(desc: Descriptor, options: UpdateOptions = {}): Promise<void> {
    await this.#requireBlob(desc, 'addManifest');
    await this.#updateIndex(
      (manifests) =>
        manifests.some((m) => m.digest === desc.digest) ? undefined : [...manifests, desc],
      options.signal,
    );
  }

  /** Remove `tag`; an entry left without any name is dropped. False when there was no such tag. */
  removeTag(tag: string, options: UpdateOptions = {}): Promise<boolean> {
    return this.#updateIndex(
      (manifests) => (findTag(manifests, tag) ? withoutTag(manifests, tag) : undefined),
      options.signal,
    );
  }

  /**
   * Delete the blobs no `index.json` entry reaches, and temp files left by killed writers. Runs
   * under the index lock, so tags cannot change meanwhile; a blob another process has written but
   * not yet tagged is unreachable and will be deleted.
   */
  gc(options: GcOptions = {}): Promise<GcResult> {
    return this.#exclusive(async () => {
      const { index } = await this.#readIndex();
      const roots = index.subject ? [...index.manifests, index.subject] : index.manifests;
      const keep = await reachable(
        roots,
        (desc) =>
          this.readBytes(desc.digest, { signal: options.signal }).catch((error: unknown) => {
            if (error instanceof BlobUnknownError) return undefined;
            throw error;
          }),
        options.signal,
      );
      return sweep(this.dir, keep, options);
    }, options.signal);
  }

  async #create(): Promise<void> {
    const blobs = join(this.dir, 'blobs');
    if (!(await exists(blobs))) await mkdir(blobs, { recursive: true });
    if (await exists(this.#layoutPath)) {
      await this.#checkLayoutFile();
    } else {
      await writeFileAtomic(
        this.#layoutPath,
        JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }),
      );
    }
    if (await exists(this.#indexPath)) return;
    try {
      await this.#updateIndex(() => undefined);
    } catch (error) {
      // A read-only layout without index.json still reads (as an empty index).
      if (!READ_ONLY_CODES.has(errorCode(error) ?? '')) throw error;
    }
  }

  async #checkLayoutFile(): Promise<void> {
    const path = this.#layoutPath;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
      throw new LayoutInvalidError(path, 'missing: not an OCI image layout', { cause: error });
    }
    const value = parseJson(text, path);
    const version = isObject(value) ? value.imageLayoutVersion : undefined;
    if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
      throw new LayoutInvalidError(
        path,
        `unsupported imageLayoutVersion ${JSON.stringify(version)}`,
      );
    }
  }

  async #readIndex(): Promise<{ index: ImageIndex; exists: boolean }> {
    const path = this.#indexPath;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { index: EMPTY_INDEX, exists: false };
      throw error;
    }
    return { index: parseImageIndex(parseJson(text, path), path), exists: true };
  }

  /**
   * Read-modify-write `index.json` under the lock. `change` returns the new entries, or undefined
   * for "no change" (then nothing is written unless the file is missing). True when it changed.
   */
  #updateIndex(
    change: (manifests: readonly Descriptor[]) => Descriptor[] | undefined,
    signal?: AbortSignal,
  ): Promise<boolean> {
    return this.#exclusive(async () => {
      const { index, exists } = await this.#readIndex();
      const manifests = change(index.manifests);
      if (manifests === undefined && exists) return false;
      const next = { ...index, manifests: manifests ?? index.manifests };
      await writeFileAtomic(this.#indexPath, JSON.stringify(next));
      return manifests !== undefined;
    }, signal);
  }

  #exclusive<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const lock = { timeoutMs: this.#lockTimeoutMs, staleMs: this.#staleLockMs, signal };
    return this.#serial.run(() => withFileLock(`${this.#indexPath}.lock`, lock, task), signal);
  }

  async #requireBlob(desc: Descriptor, where: string): Promise<void> {
    parseDescriptor(desc, 'descriptor', where);
    const stored = await this.info(desc.digest);
    if (stored === undefined) throw new BlobUnknownError(desc.digest, this.dir);
    if (stored.size !== desc.size) {
      throw new LayoutError(
        'SIZE_INVALID',
        `${where}: descriptor of ${desc.digest} says ${desc.size} bytes, the stored blob has ${stored.size}`,
      );
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}
