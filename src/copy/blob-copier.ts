import { pipeline, type Readable } from 'node:stream';
import { ensureVerified, markVerified, verifiedDigest } from '../digest/index.ts';
import { OciferryError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import type { UploadSession } from '../registry/index.ts';
import type { BlobLocations } from '../remote/blob-locations.ts';
import type { Provider } from '../remote/provider.ts';
import { mounterOf, type Store } from '../remote/store.ts';
import { countingStage } from '../util/counting.ts';
import { Limiter } from '../util/limiter.ts';
import type { BlobStats, CopyEvent } from './events.ts';
import { Tee } from './tee.ts';

/** Media types of layers that must not be pushed anywhere (foreign / non-distributable). */
const NON_DISTRIBUTABLE = /(\.foreign\.|\.nondistributable\.)/;

/** Options of {@link BlobCopier}. */
export interface BlobCopierOptions {
  /** Blob transfers at once, each feeding every target that needs the blob (default 8). */
  concurrency: number;
  /** Where blobs are known to live: what a mount is tried from, and where pushes are recorded. */
  locations: BlobLocations;
  /**
   * Whether target `other` wants blob `digest`, which target `requester` asked for: if so it
   * joins that transfer and shares its read. Default: every target wants every blob.
   */
  shares?: (other: number, digest: string, requester: number) => boolean;
  onEvent?: (event: CopyEvent) => void;
  signal?: AbortSignal;
}

/** One target's side of a {@link BlobCopier}: what a copy session into that target uses. */
export interface BlobLane {
  readonly stats: BlobStats;
  /** Copy one blob into this target (at most once per copy). */
  copy(descriptor: Descriptor, provider: Provider): Promise<void>;
  /** Count a blob the target is known to hold (no request), unless a transfer has it already. */
  present(descriptor: Descriptor): void;
}

/** What a target needs of a blob, found out without reading it (see {@link BlobCopier}). */
type Need =
  | { readonly kind: 'present' }
  | { readonly kind: 'mounted'; readonly from: string }
  | { readonly kind: 'bytes'; readonly session?: UploadSession };

/**
 * Copies blobs into one or more targets at once, each blob at most once per target, through a
 * bounded pool of transfers. Per blob, every target that wants it decides first: where the blob
 * is known to live on its registry, mount from the best repository (201: done, whether the blob was linked just
 * now or was there already; the registry answers both alike, in one request where HEAD + mount
 * took two); else, or when the mount was refused, HEAD (exists -> skip; a 202's session is
 * cancelled, else kept for the upload). Only then is the source opened, once, and teed into
 * every target still needing the bytes (a lone target reads it directly), verified on the way,
 * at the pace of the slowest. A target on the same registry as an earlier one that needs the
 * bytes waits for it and mounts from it instead. A target whose upload is retried, or that could
 * not start in time (see {@link Tee}), reads the source again on its own.
 */
export class BlobCopier {
  /** Figures per target, in target order. */
  readonly stats: readonly BlobStats[];
  readonly #targets: readonly Store[];
  readonly #options: BlobCopierOptions;
  readonly #pool: Limiter;
  /** `<target index> <digest>` -> the transfer into that target, in flight or done. */
  readonly #transfers = new Map<string, Promise<void>>();
  readonly #dropped = new Set<number>();
  /** Per target: aborts its work when its copy failed. */
  readonly #aborts: readonly AbortController[];
  readonly #signals: readonly AbortSignal[];
  /** Transfers queued or running. */
  readonly #batches = new Set<Promise<void>>();
  #bytesDownloaded = 0;

  constructor(targets: readonly Store[], options: BlobCopierOptions) {
    this.#targets = targets;
    this.#options = options;
    this.#pool = new Limiter(options.concurrency);
    this.stats = targets.map(() => ({
      mounted: 0,
      skipped: 0,
      uploaded: 0,
      bytesUploaded: 0,
      bytesDownloaded: 0,
    }));
    this.#aborts = targets.map(() => new AbortController());
    this.#signals = this.#aborts.map((abort) =>
      options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal,
    );
  }

  /** Bytes downloaded from sources for all targets, each read counted once. */
  get bytesDownloaded(): number {
    return this.#bytesDownloaded;
  }

  /** The side of target `index`. */
  lane(index: number): BlobLane {
    return {
      stats: this.#statsOf(index),
      copy: (descriptor, provider) => this.copy(descriptor, provider, index),
      present: (descriptor) => {
        const id = key(index, descriptor.digest);
        if (this.#transfers.has(id)) return;
        this.#transfers.set(id, Promise.resolve());
        this.#settled(index, descriptor, { kind: 'present' });
      },
    };
  }

  /** Copy one blob into target `index`, with every other target that wants it joining in. */
  copy(descriptor: Descriptor, provider: Provider, index: number): Promise<void> {
    if (NON_DISTRIBUTABLE.test(descriptor.mediaType) && descriptor.urls?.length) {
      return Promise.resolve();
    }
    const { digest } = descriptor;
    const running = this.#transfers.get(key(index, digest));
    if (running) return running;
    const shares = this.#options.shares ?? (() => true);
    const members = this.#targets
      .map((_, other) => other)
      .filter(
        (other) =>
          other === index ||
          (!this.#dropped.has(other) &&
            !this.#transfers.has(key(other, digest)) &&
            shares(other, digest, index)),
      );
    const transfers = this.#start(descriptor, provider, members);
    return transfers[members.indexOf(index)] as Promise<void>;
  }

  /**
   * Give up on target `index` (its copy failed): its transfers in flight are aborted, and it
   * joins no transfer from now on.
   */
  drop(index: number): void {
    this.#dropped.add(index);
    this.#aborts[index]?.abort(new DroppedTargetError());
  }

  /** Resolves once every transfer started so far has settled (nothing runs behind the caller). */
  async settled(): Promise<void> {
    while (this.#batches.size > 0) await Promise.allSettled([...this.#batches]);
  }

  /** Queue one transfer into `members`; returns each member's outcome, registered by key. */
  #start(descriptor: Descriptor, provider: Provider, members: readonly number[]): Promise<void>[] {
    const started = new Promise<Promise<void>[]>((resolve, reject) => {
      const batch = this.#pool
        .run(() => {
          const transfer = this.#transfer(descriptor, provider, members);
          resolve(transfer.outcomes);
          return transfer.done;
        }, this.#options.signal)
        .catch(reject)
        .finally(() => this.#batches.delete(batch));
      this.#batches.add(batch);
    });
    return members.map((index, k) => {
      const id = key(index, descriptor.digest);
      const outcome = started.then((outcomes) => outcomes[k]);
      // A failed transfer is forgotten, so that a later request tries again.
      outcome.catch(() => {
        if (this.#transfers.get(id) === outcome) this.#transfers.delete(id);
      });
      this.#transfers.set(id, outcome);
      return outcome;
    });
  }

  /**
   * The per-member work of one transfer (see the class comment for the order of things), and
   * what settles once all of it has.
   */
  #transfer(
    descriptor: Descriptor,
    provider: Provider,
    members: readonly number[],
  ): { outcomes: Promise<void>[]; done: Promise<void> } {
    const { signal } = this.#options;
    let shared = 0;
    // A lone member reads on its own: a tee would only add a stream stage per chunk.
    const tee =
      members.length > 1
        ? new Tee(
            () =>
              this.#read(descriptor, provider, signal, (bytes, download) => {
                if (download) shared += bytes;
              }),
            members.length,
          )
        : undefined;
    const needs = members.map((index) =>
      this.#dropped.has(index)
        ? Promise.reject(new DroppedTargetError())
        : this.#need(index, descriptor),
    );
    const leaders = Promise.allSettled(needs).then((checks) => this.#leaders(members, checks));
    const outcomes = members.map(async (index, k) => {
      try {
        const need = await (needs[k] as Promise<Need>);
        if (need.kind !== 'bytes') {
          tee?.release(k);
          this.#settled(index, descriptor, need);
          return;
        }
        const leader = (await leaders)[k];
        if (leader === undefined) {
          const branch = tee && { tee, branch: k };
          await this.#upload(index, descriptor, provider, branch, need.session);
          return;
        }
        tee?.release(k);
        if (need.session) await mounterOf(this.#target(index))?.cancelMount(need.session);
        const leaderDone = await (outcomes[leader] as Promise<void>).then(
          () => true,
          () => false,
        );
        const sameRepository =
          this.#target(members[leader] as number).location?.repository ===
          this.#target(index).location?.repository;
        if (leaderDone && sameRepository) {
          this.#settled(index, descriptor, { kind: 'present' });
          return;
        }
        // The blob is known to live in the leader's repository now: mount from it, or upload alone.
        const again = await this.#need(index, descriptor);
        if (again.kind === 'bytes') {
          await this.#upload(index, descriptor, provider, undefined, again.session);
        } else {
          this.#settled(index, descriptor, again);
        }
      } finally {
        tee?.release(k);
      }
    });
    // The shared read counts at the first member (in target order) that took it.
    const done = Promise.allSettled(outcomes).then(() => {
      const first = Math.min(...(tee?.claimed ?? []));
      if (Number.isFinite(first)) this.#statsOf(members[first] as number).bytesDownloaded += shared;
    });
    return { outcomes, done };
  }

  /**
   * For each member: the position of the earlier member it follows (same registry, both need
   * the bytes), or undefined when it leads (or does not need the bytes at all).
   */
  #leaders(
    members: readonly number[],
    checks: readonly PromiseSettledResult<Need>[],
  ): (number | undefined)[] {
    const firstOnRegistry = new Map<string, number>();
    return checks.map((check, k) => {
      const registry = this.#target(members[k] as number).location?.registry;
      if (check.status === 'rejected' || check.value.kind !== 'bytes' || registry === undefined) {
        return undefined;
      }
      const first = firstOnRegistry.get(registry);
      if (first === undefined) firstOnRegistry.set(registry, k);
      return first;
    });
  }

  /**
   * What target `index` needs of a blob, without reading it: mount first where a repository on its
   * registry is known to hold it, then (none known, or the mount was refused) HEAD.
   */
  async #need(index: number, descriptor: Descriptor): Promise<Need> {
    const target = this.#target(index);
    const signal = this.#signalOf(index);
    const location = target.location;
    const from =
      location &&
      this.#options.locations.mountFrom(descriptor.digest, location.registry, location.repository);
    const mounter = mounterOf(target);
    let session: UploadSession | undefined;
    if (from && mounter) {
      const mount = await mounter.mount(descriptor, from, { signal });
      if (mount.mounted) return { kind: 'mounted', from };
      session = mount.session;
    }
    if (await target.exists(descriptor, { signal })) {
      if (session) await mounter?.cancelMount(session);
      return { kind: 'present' };
    }
    return { kind: 'bytes', session };
  }

  /** Stream the blob into target `index` (into `session` when a mount opened one). */
  async #upload(
    index: number,
    descriptor: Descriptor,
    provider: Provider,
    shared: { tee: Tee; branch: number } | undefined,
    session: UploadSession | undefined,
  ): Promise<void> {
    const signal = this.#signalOf(index);
    const target = this.#target(index);
    const stats = this.#statsOf(index);
    const { digest, size } = descriptor;
    const emit = (event: CopyEvent) =>
      this.#options.onEvent?.({ ...event, target: target.description });
    emit({ type: 'blob-start', digest, size });
    let attempts = 0;
    let attemptBytes = 0;
    const open = async (): Promise<Readable> => {
      attempts++;
      // Only the bytes of the attempt that succeeds count as uploaded.
      stats.bytesUploaded -= attemptBytes;
      attemptBytes = 0;
      const uploaded = (bytes: number) => {
        attemptBytes += bytes;
        stats.bytesUploaded += bytes;
        emit({ type: 'blob-progress', digest, size, bytes: attemptBytes });
      };
      // The shared read serves the first attempt only: a retry reads again, on its own.
      const branch = attempts === 1 ? shared?.tee.claim(shared.branch) : undefined;
      if (attempts > 1) shared?.tee.release(shared.branch);
      // A branch fails with its source, which #read made a verifying stream.
      if (branch) return counted(markVerified(branch, digest), uploaded);
      // Read alone: one counting stage for both directions.
      return this.#read(descriptor, provider, signal, (bytes, download) => {
        if (download) stats.bytesDownloaded += bytes;
        uploaded(bytes);
      });
    };
    await target.push(descriptor, open, { signal, session });
    stats.uploaded++;
    emit({ type: 'blob-done', digest, size });
    this.#learn(target, digest);
  }

  /**
   * Open one read of the source, reporting its bytes to `count`; those that cross the network
   * (not from a layout or memory) are downloads and go into the copy's total too. The stream
   * verifies the blob: the provider's own when it says so, else one put in front here, so that a
   * shared read is hashed once for every target it feeds.
   */
  async #read(
    descriptor: Descriptor,
    provider: Provider,
    signal: AbortSignal | undefined,
    count: (bytes: number, download: boolean) => void,
  ): Promise<Readable> {
    const download = provider.isLocal?.(descriptor.digest) !== true;
    const fetched = await provider.fetch(descriptor, { signal });
    const body = ensureVerified(fetched, descriptor.digest, {
      size: descriptor.size,
      source: provider.description,
    });
    return counted(body, (bytes) => {
      if (download) this.#bytesDownloaded += bytes;
      count(bytes, download);
    });
  }

  /** Count and report a blob that needed no bytes: there already, or mounted. */
  #settled(index: number, descriptor: Descriptor, need: Exclude<Need, { kind: 'bytes' }>): void {
    const target = this.#target(index);
    const { digest, size } = descriptor;
    const stats = this.#statsOf(index);
    if (need.kind === 'mounted') {
      stats.mounted++;
      this.#options.onEvent?.({
        type: 'blob-mounted',
        digest,
        size,
        from: need.from,
        target: target.description,
      });
    } else {
      stats.skipped++;
      this.#options.onEvent?.({ type: 'blob-skipped', digest, size, target: target.description });
    }
    this.#learn(target, digest);
  }

  /** After a successful push the blob is known to live in the target repository. */
  #learn(target: Store, digest: string): void {
    const location = target.location;
    if (location) this.#options.locations.add(digest, location.registry, location.repository);
  }

  #target(index: number): Store {
    return this.#targets[index] as Store;
  }

  #statsOf(index: number): BlobStats {
    return this.stats[index] as BlobStats;
  }

  #signalOf(index: number): AbortSignal {
    return this.#signals[index] as AbortSignal;
  }
}

/** Why the work of a dropped target stops (nobody waits for it any more). */
class DroppedTargetError extends OciferryError {
  constructor() {
    super(
      'COPY_ABANDONED',
      'the copy to this destination failed; its remaining blobs were skipped',
    );
  }
}

/**
 * `body` through a stage that reports the size of each chunk to `count`; the stage verifies what
 * `body` verifies (an error of `body` destroys it).
 */
function counted(body: Readable, count: (bytes: number) => void): Readable {
  const counter = countingStage(count);
  pipeline(body, counter, () => undefined);
  const digest = verifiedDigest(body);
  return digest === undefined ? counter : markVerified(counter, digest);
}

function key(index: number, digest: string): string {
  return `${index} ${digest}`;
}
