import { type FileHandle, mkdir, readFile, stat, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { addAbortSignal, finished, Readable } from 'node:stream';
import { DigestMismatchError, digestBytes, parseDigest, verifiedStream } from '../digest/index.ts';
import { SizeExceededError } from '../errors.ts';
import { OCI_INDEX } from '../oci/index.ts';
import { AbortWatch } from '../util/abort-watch.ts';
import { childSignal } from '../util/child-signal.ts';
import { Limiter, mapLimit } from '../util/limiter.ts';
import { replaceFile } from '../util/replace-file.ts';
import { SingleFlight } from '../util/single-flight.ts';
import { tempPath } from './atomic.ts';
import { blobPath, blobReadStream, ingestBlob, openBlob } from './blobs.ts';
import { errorCode } from './errno.ts';
import { BlobUnknownError, LayoutError, LayoutInvalidError } from './errors.ts';
import {
  type GcOptions,
  type GcResult,
  type PruneOptions,
  type PruneResult,
  pruneBlobs,
  reachable,
  removed,
  type StoredBlob,
  storedBlobs,
  sweep,
  sweepTemps,
} from './gc.ts';
import { withFileLock } from './lock.ts';
import { lookUp } from './lookup.ts';
import { asReferrer, type Referrer } from './referrers.ts';
import { assertTag, findTag, indexEntry, listTags, withoutTag, withTag } from './tags.ts';
import { type Descriptor, type ImageIndex, LINKING_MEDIA_TYPES } from './types.ts';
import { isObject, parseDescriptor, parseImageIndex, parseJson } from './validate.ts';

/** Options of {@link LayoutStore.open}. */
export interface OpenOptions {
  /** Create the directory, `oci-layout`, `blobs/` and `index.json` when missing. Default true. */
  create?: boolean;
  /** How long an index update waits for `index.json.lock` held by another writer. Default 10 s. */
  lockTimeoutMs?: number;
  /**
   * A lock held from another host and not refreshed for this long is broken as stale (holders
   * refresh it); one held on this host is broken only when its process is gone. Default 30 s.
   */
  staleLockMs?: number;
}

/** Bytes to store: a stream, or a function opening one only if the blob is really missing. */
export type LayoutBlobBody = Readable | (() => Readable | Promise<Readable>);
/** @deprecated Use {@link LayoutBlobBody}. */
export type LayoutBlobSource = LayoutBlobBody;

/** Options of {@link LayoutStore.writeBlob}. */
export interface WriteBlobOptions {
  signal?: AbortSignal;
  /** Called with the running total of bytes written. */
  onProgress?: (bytes: number) => void;
  /**
   * @deprecated Ignored: a source that verifies the digest itself says so on the stream
   * (`markVerified`, as every verifying stream of ociferry does), and only then are its bytes
   * not hashed a second time.
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

/** Options of {@link LayoutStore.fetch}. */
export interface LayoutFetchOptions {
  signal?: AbortSignal;
  /** Byte range, `end` inclusive; omitted for the whole blob. Only whole reads are verified. */
  range?: { start: number; end?: number };
}

const LAYOUT_VERSION = '1.0.0';
const READ_ONLY_CODES = new Set(['EROFS', 'EACCES', 'EPERM']);
const DEFAULT_READ_LIMIT = 4 * 1024 * 1024;
const EMPTY_INDEX: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };

/**
 * An OCI image layout directory used as a content store: blobs are written atomically after
 * digest verification, `index.json` is updated under `index.json.lock` (safe across processes),
 * and reads never write, so read-only layouts work. It is the store of the `oci:` backend: the
 * one-verb calls a copy and a resolve use (`fetch`, `exists`, `push`, `resolve`, `tag`, ...) are
 * those of every store (see `Store`).
 */
export class LayoutStore {
  /** Absolute path of the layout directory. */
  readonly dir: string;
  /** `oci:DIR`, for progress and messages. */
  readonly description: string;
  /** A manifest here says nothing about its blobs (a GC or a hand may have removed some). */
  readonly checksReferences = false;
  readonly #lockTimeoutMs: number;
  readonly #staleLockMs: number;
  /** Queues this store's own index updates here instead of spinning on the lock file. */
  readonly #serial = new Limiter(1);
  /** One listener per caller signal for all of this store's blob writes. */
  readonly #aborts = new AbortWatch();
  /** Per manifest digest, what it is as a referrer (undefined: not one), see {@link referrers}. */
  readonly #referrerFacts = new Map<string, Referrer | undefined>();
  /** Blob pushes in flight, by digest: concurrent pushes of one blob share one write. */
  readonly #pushes = new SingleFlight<string, boolean>();
  /** The sweep of dead writers' temp files, run once before the first write. */
  #swept: Promise<void> | undefined;

  private constructor(dir: string, options: OpenOptions) {
    this.dir = dir;
    this.description = `oci:${dir}`;
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
   * under the final name unless it is complete and verified. A stream that verifies this digest
   * itself (see `verifiedDigest`) is not hashed a second time: only its size is checked. Returns false when the blob was
   * already present: then a `body` function is never called, and a `body` stream is left
   * untouched and unconsumed (the caller destroys it; pass a function to avoid opening one).
   * A file of another size than `desc.size` under the blob's name is not the blob: it is
   * replaced, atomically. Once a write starts the stream is consumed or destroyed. Two writers
   * of one digest at once both succeed; one gets false.
   */
  async writeBlob(
    desc: { digest: string; size?: number },
    body: LayoutBlobBody,
    options: WriteBlobOptions = {},
  ): Promise<boolean> {
    const path = blobPath(this.dir, desc.digest);
    if (desc.size !== undefined && !(Number.isSafeInteger(desc.size) && desc.size >= 0)) {
      throw new RangeError(`size must be a non-negative integer, got ${desc.size}`);
    }
    options.signal?.throwIfAborted();
    const stored = await this.info(desc.digest);
    if (stored && (desc.size === undefined || stored.size === desc.size)) return false;
    return this.#ingest(path, desc, body, { ...options, replace: stored !== undefined });
  }

  /**
   * {@link writeBlob} for bytes already in memory (manifests, configs). A stored file of the
   * same size is compared with `bytes` too, and replaced when it differs.
   */
  async writeBytes(
    desc: { digest: string; size?: number },
    bytes: Uint8Array,
    options: WriteBlobOptions = {},
  ): Promise<boolean> {
    const path = blobPath(this.dir, desc.digest);
    options.signal?.throwIfAborted();
    const stored = await this.info(desc.digest);
    if (stored?.size === bytes.length && (await holds(path, bytes))) return false;
    const size = desc.size ?? bytes.length;
    return this.#ingest(path, { ...desc, size }, Readable.from([bytes]), {
      ...options,
      replace: stored !== undefined,
    });
  }

  async #ingest(
    path: string,
    desc: { digest: string; size?: number },
    body: LayoutBlobBody,
    options: WriteBlobOptions & { replace: boolean },
  ): Promise<boolean> {
    await this.#sweepOnce();
    const bytes = typeof body === 'function' ? await body() : body;
    // The write's pipeline listens on a signal of its own: the caller's is shared by every blob
    // of a copy and gets one listener from this store however many blobs it writes.
    const abort = options.signal ? childSignal(this.#aborts, options.signal) : undefined;
    try {
      const { digest, size } = desc;
      const { onProgress, replace } = options;
      return await ingestBlob(path, bytes, {
        signal: abort?.signal,
        onProgress,
        replace,
        digest,
        size,
      });
    } finally {
      abort?.dispose();
    }
  }

  /**
   * Before this store's first write, remove the temp files of writers killed on this host (their
   * process is gone, nobody will finish them). Best effort: a failure never fails the write.
   */
  #sweepOnce(): Promise<void> {
    this.#swept ??= sweepTemps(this.dir).then(
      () => undefined,
      () => undefined,
    );
    return this.#swept;
  }

  /**
   * Stream a stored blob, optionally bytes `start` to `end` (inclusive). Emits BLOB_UNKNOWN when
   * absent; the bytes were verified when written and are not re-hashed here.
   */
  readBlob(digest: string, options: { start?: number; end?: number } = {}): Readable {
    return blobReadStream(blobPath(this.dir, digest), digest, this.dir, options);
  }

  /**
   * The blob's file, open for reading (BLOB_UNKNOWN when missing), for a reader that reads by
   * position into buffers of its own; unverified, as {@link LayoutStore.readBlob}. Close it.
   */
  openBlob(digest: string): Promise<FileHandle> {
    return openBlob(blobPath(this.dir, digest), digest, this.dir);
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

  /**
   * The manifests in `index.json` whose `subject` is `digest`: the layout's answer to a
   * registry's referrers API. A layout records referrers as entries without a name (as the
   * image-layout spec allows; {@link LayoutStore.addManifest}). Each entry's manifest is read once
   * per store (content-addressed, so the answer cannot change).
   */
  async referrers(digest: string, options: { signal?: AbortSignal } = {}): Promise<Descriptor[]> {
    parseDigest(digest);
    const found = new Map<string, Descriptor>();
    for (const { entry, referrer } of await this.#entries(options.signal)) {
      if (referrer?.subject.digest === digest) found.set(entry.digest, referrer.descriptor);
    }
    return [...found.values()];
  }

  /**
   * The `index.json` entries that are not referrers of another manifest: the images and indexes
   * the layout holds, which `oci:DIR` without a tag can name when there is only one.
   */
  async images(options: { signal?: AbortSignal } = {}): Promise<Descriptor[]> {
    const entries = await this.#entries(options.signal);
    return entries.filter((each) => each.referrer === undefined).map((each) => each.entry);
  }

  /** The index entries, each with what its manifest is as a referrer (undefined: not one). */
  async #entries(
    signal?: AbortSignal,
  ): Promise<{ entry: Descriptor; referrer: Referrer | undefined }[]> {
    const { manifests } = await this.index();
    return mapLimit(
      manifests,
      8,
      async (entry) => ({ entry, referrer: await this.#referrerOf(entry, signal) }),
      signal,
    );
  }

  async #referrerOf(entry: Descriptor, signal?: AbortSignal): Promise<Referrer | undefined> {
    if (!LINKING_MEDIA_TYPES.has(entry.mediaType)) return undefined;
    if (this.#referrerFacts.has(entry.digest)) return this.#referrerFacts.get(entry.digest);
    let referrer: Referrer | undefined;
    try {
      referrer = asReferrer(entry, await this.readBytes(entry.digest, { signal }));
    } catch (error) {
      // An entry whose blob is gone names nothing, as for GC.
      if (!(error instanceof BlobUnknownError)) throw error;
    }
    this.#referrerFacts.set(entry.digest, referrer);
    return referrer;
  }

  /** Reads stay on this machine: they are not downloads. */
  isLocal(): boolean {
    return true;
  }

  /**
   * Stream a blob (whole, or bytes `range.start` to `range.end` inclusive). A whole read is
   * verified against the digest and size of `descriptor` (a layout can be corrupt on disk); a
   * missing blob fails the stream with BLOB_UNKNOWN.
   */
  async fetch(
    descriptor: { digest: string; size?: number },
    options: LayoutFetchOptions = {},
  ): Promise<Readable> {
    const source = this.readBlob(descriptor.digest, options.range);
    if (options.signal) {
      // The caller's signal is shared by every blob of a copy: it keeps one listener for all
      // of them, and this stream listens on a signal of its own.
      const abort = childSignal(this.#aborts, options.signal);
      addAbortSignal(abort.signal, source);
      finished(source, abort.dispose);
    }
    if (options.range) return source;
    return verifiedStream(source, descriptor.digest, {
      size: descriptor.size,
      source: this.description,
    });
  }

  /** Manifest bytes by descriptor, digest re-verified, refused above 4 MiB. */
  fetchManifest(
    descriptor: { digest: string },
    options: { signal?: AbortSignal } = {},
  ): Promise<Buffer> {
    return this.readBytes(descriptor.digest, { signal: options.signal });
  }

  /** Present with the right size: a file of another size under the name is not the blob. */
  async exists(descriptor: { digest: string; size: number }): Promise<boolean> {
    return (await this.info(descriptor.digest))?.size === descriptor.size;
  }

  /**
   * The descriptor of the manifest `reference` names: a tag, a digest (listed in `index.json`
   * or not), or, when undefined, the layout's only image (else `latest`).
   * @throws NotFoundInLayoutError (MANIFEST_UNKNOWN) when there is none
   */
  resolve(reference?: string, options: { signal?: AbortSignal } = {}): Promise<Descriptor> {
    return lookUp(this, reference, options.signal);
  }

  /** {@link resolve}, with the manifest's bytes. */
  async fetchReference(
    reference?: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const descriptor = await this.resolve(reference, options);
    return { descriptor, bytes: await this.fetchManifest(descriptor, options) };
  }

  /**
   * Store a blob whose bytes `open` streams, unless it is there already (see {@link writeBlob}):
   * concurrent pushes of one digest to this store share one write, and only its `open` is called.
   */
  async push(
    descriptor: { digest: string; size: number },
    open: () => Readable | Promise<Readable>,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    await this.#pushes.do(
      descriptor.digest,
      (signal) => this.writeBlob(descriptor, open, { signal }),
      options.signal,
    );
  }

  /**
   * Store manifest bytes; a manifest with a subject (a signature, an SBOM) also gets an entry
   * without a name in `index.json`: that keeps it from GC and lists it as a referrer.
   */
  async pushManifest(
    descriptor: Descriptor,
    bytes: Buffer,
    options: UpdateOptions = {},
  ): Promise<void> {
    await this.writeBytes(descriptor, bytes, options);
    const referrer = asReferrer(descriptor, bytes);
    if (referrer) {
      const { annotations: _, ...entry } = referrer.descriptor;
      await this.addManifest(entry, options);
    }
  }

  /** Store manifest bytes and point `tag` at them. */
  async tag(
    descriptor: Descriptor,
    bytes: Buffer,
    tag: string,
    options: UpdateOptions = {},
  ): Promise<void> {
    await this.writeBytes(descriptor, bytes, options);
    await this.putTag(tag, indexEntry(descriptor), options);
  }

  /** List a root stored without a tag in `index.json`, which keeps it from GC. */
  async keepUntagged(descriptor: Descriptor, options: UpdateOptions = {}): Promise<void> {
    await this.addManifest(indexEntry(descriptor), options);
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
    return this.#exclusive(async (held) => {
      const keep = await this.#reachable(options.signal);
      held.throwIfAborted();
      return sweep(this.dir, keep, options);
    }, options.signal);
  }

  /**
   * Keep the blobs within `maxBytes`: those no `index.json` entry reaches (and not in `keep`)
   * are deleted, the least recently used first (written, or marked with {@link touchBlob}),
   * until the blobs left fit. Runs under the index lock, as {@link gc}; temp files stay.
   */
  prune(options: PruneOptions): Promise<PruneResult> {
    const { maxBytes, signal } = options;
    return this.#exclusive(async (held) => {
      const keep = await this.#reachable(signal);
      for (const digest of options.keep ?? []) keep.add(digest);
      held.throwIfAborted();
      return pruneBlobs(this.dir, keep, maxBytes, signal);
    }, signal);
  }

  /** Every blob the store holds, with its size and last use; temp files are not blobs. */
  blobs(options: { signal?: AbortSignal } = {}): AsyncIterable<StoredBlob> {
    return storedBlobs(this.dir, options.signal);
  }

  /**
   * Delete one blob, whatever references it (GC and {@link prune} keep what `index.json`
   * reaches; this does not ask). False when it was not there.
   */
  async deleteBlob(digest: string): Promise<boolean> {
    const path = blobPath(this.dir, digest);
    this.#referrerFacts.delete(digest);
    return removed(path);
  }

  /** Mark a blob as used now, for {@link prune}'s order; best effort (a missing blob is fine). */
  async touchBlob(digest: string): Promise<void> {
    const now = new Date();
    await utimes(blobPath(this.dir, digest), now, now).catch(() => {});
  }

  /** The digests `index.json` reaches (its entries, their children, its subject). */
  async #reachable(signal: AbortSignal | undefined): Promise<Set<string>> {
    const { index } = await this.#readIndex();
    const roots = index.subject ? [...index.manifests, index.subject] : index.manifests;
    return reachable(
      roots,
      (desc) =>
        this.readBytes(desc.digest, { signal }).catch((error: unknown) => {
          if (error instanceof BlobUnknownError) return undefined;
          throw error;
        }),
      signal,
    );
  }

  /**
   * Check what is there before writing anything: a foreign `index.json` or `oci-layout` is
   * refused with nothing created, so a wrong directory is never half turned into a layout.
   */
  async #create(): Promise<void> {
    const { exists: hasIndex } = await this.#readIndex().catch((error: unknown) => {
      if (!(error instanceof LayoutInvalidError)) throw error;
      throw new LayoutInvalidError(
        this.#indexPath,
        `${error.reason}; not an OCI image layout, nothing was written`,
        { cause: error },
      );
    });
    const hasLayoutFile = await exists(this.#layoutPath);
    if (hasLayoutFile) await this.#checkLayoutFile();
    const blobs = join(this.dir, 'blobs');
    if (!(await exists(blobs))) await mkdir(blobs, { recursive: true });
    if (!hasLayoutFile) {
      const layout = JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION });
      await replaceFile(this.#layoutPath, layout, { tempIn: tempPath });
    }
    if (hasIndex) return;
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
    return this.#exclusive(async (held) => {
      await this.#sweepOnce();
      const { index, exists } = await this.#readIndex();
      const manifests = change(index.manifests);
      if (manifests === undefined && exists) return false;
      const next = { ...index, manifests: manifests ?? index.manifests };
      held.throwIfAborted();
      await replaceFile(this.#indexPath, JSON.stringify(next), { tempIn: tempPath });
      return manifests !== undefined;
    }, signal);
  }

  #exclusive<T>(task: (held: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const lock = { timeoutMs: this.#lockTimeoutMs, staleMs: this.#staleLockMs, signal };
    return this.#serial.run(() => withFileLock(`${this.#indexPath}.lock`, lock, task), signal);
  }

  async #requireBlob(desc: Descriptor, where: string): Promise<void> {
    parseDescriptor(desc, where, 'descriptor');
    const stored = await this.info(desc.digest);
    if (stored === undefined) throw new BlobUnknownError(desc.digest, this.dir);
    if (stored.size !== desc.size) {
      throw new LayoutError(
        'SIZE_MISMATCH',
        `${where}: descriptor of ${desc.digest} says ${desc.size} bytes, the stored blob has ${stored.size}`,
      );
    }
  }
}

/** True when the file at `path` holds exactly `bytes` (false when it is gone). */
async function holds(path: string, bytes: Uint8Array): Promise<boolean> {
  try {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(
      await readFile(path),
    );
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
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
