import { OciferryError } from '../errors.ts';
import { isIndexMediaType, isManifestMediaType } from '../oci/index.ts';
import { formatReference, parseReference, type Reference } from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import type { BlobLocations } from '../remote/blob-locations.ts';
import { type ContextOptions, contextOf } from '../remote/ociferry-context.ts';
import { openStore } from '../remote/open-store.ts';
import type { Remote } from '../remote/remote-index.ts';
import type { Store } from '../remote/store.ts';
import { mapLimit } from '../util/limiter.ts';
import { BlobCopier, type BlobCopierOptions } from './blob-copier.ts';
import { convertedManifest } from './convert.ts';
import { CopySession, type CopySessionOptions, type PushedManifest } from './copy-session.ts';
import type { BlobStats, CopyEvent, CopyResult } from './events.ts';

/** Options of {@link copy}, {@link copyToMany} and {@link buildIndex}. */
export interface CopyOptions extends ContextOptions {
  /** Client for the target (and for counting requests); default the context's. */
  client?: RegistryClient;
  /** Blob transfers at once, default 8; with several destinations each one feeds all of them. */
  concurrency?: number;
  /** Rewrite Docker schema 2 manifests and lists with OCI media types (blobs unchanged). */
  ociMediatypes?: boolean;
  /** Tags to create besides the destination's own tag (at every destination). */
  tags?: readonly string[];
  /** Also copy manifests whose subject is a copied manifest (signatures, SBOMs). */
  referrers?: boolean;
  /** Where blobs are known to live, to pick the repository to mount each from; default the source's. */
  blobLocations?: BlobLocations;
  /** @deprecated Use {@link blobLocations}. */
  sources?: BlobLocations;
  signal?: AbortSignal;
  onEvent?: (event: CopyEvent) => void;
  /**
   * Called with each warning as it arises: something that did not fail the copy but made it do
   * more than it had to (a source tree that could not be listed, so its destinations share no
   * reads). The result lists them too.
   */
  onWarning?: (warning: string) => void;
}

/**
 * Where a copy writes: a reference (`host/repo[:tag]`, `oci:DIR[:tag]`; a layout directory is
 * created when missing), or a store already open (tags then come from `CopyOptions.tags`).
 */
export type Destination = string | Reference | Store;

/** A destination of {@link copyToMany} that receives other content than the shared source. */
export interface ManyDestination {
  readonly reference: Destination;
  /**
   * What to copy there, default the shared source. Blobs it has in common with what other
   * destinations copy are still read once (e.g. two wrappers around the same cache blobs).
   */
  readonly source?: Remote;
}

/** What happened at one destination of {@link copyToMany}. */
export type DestinationOutcome =
  | {
      readonly status: 'copied';
      /** The destination as given (a reference string, or formatted; a store's description). */
      readonly destination: string;
      readonly result: CopyResult;
    }
  | { readonly status: 'failed'; readonly destination: string; readonly error: unknown };

/** Result of {@link copyToMany}. */
export interface CopyManyResult {
  /** One outcome per destination, in the order given. */
  readonly destinations: readonly DestinationOutcome[];
  /**
   * Blob figures added up over the destinations copied, except `bytesDownloaded`: every byte
   * downloaded from the source, each read counted once, whichever destinations it fed.
   */
  readonly blobs: BlobStats;
  /** HTTP exchanges of the whole copy. */
  readonly requests: number;
  /** What the copy warned of (see {@link CopyOptions.onWarning}), in order. */
  readonly warnings: readonly string[];
}

/**
 * A destination names a digest the copy would not produce: the source has another digest, or a
 * conversion gives it one. Found before anything is written.
 */
export class DestinationDigestError extends OciferryError {
  /**
   * @param actual the digest the copy produces
   * @param why what made it: the source's own digest, a media type conversion, or an index build
   */
  constructor(
    destination: string,
    expected: string,
    actual: string,
    why: 'source' | 'converted' | 'built',
  ) {
    const is = {
      source: `the source is ${actual} and a copy keeps its digest; drop the digest or name the source's`,
      converted: `converted to OCI media types the copy is ${actual}; drop the digest or the conversion`,
      built: `the index built is ${actual}; drop the digest`,
    }[why];
    super('DESTINATION_DIGEST_MISMATCH', `${destination} names ${expected}, but ${is}`);
  }
}

/**
 * Copy an image or a whole index to a registry repository or an OCI layout. Per blob: mount from
 * a repository on the target's host known to hold it (a blob already there answers the same
 * 201), else exists ->
 * skip, else stream from the source with verification en route; manifests after their children,
 * tags last. Without a tag in the
 * destination (and no `tags`), the copy is by digest only and creates no tag.
 */
export async function copy(
  source: Remote,
  destination: Destination,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const [outcome] = (await copyToMany(source, [destination], options)).destinations;
  if (outcome?.status !== 'copied') throw outcome?.error;
  return outcome.result;
}

/**
 * {@link copy} to several destinations at once, reading the source once: per blob, each
 * destination first skips it (exists) or mounts it (from a repository on its registry known to
 * hold it); the source is
 * then opened once and streamed into all the others together, at the pace of the slowest, with
 * memory bounded per destination. A destination on the same registry as an earlier one that
 * needs the blob mounts it from there once that upload is done. Where a destination's upload is
 * retried, that retry reads the source again on its own (counted in `bytesDownloaded`), as does
 * one that cannot start its upload within 5 s while the others wait for it (no free request slot
 * on its host); a bad byte from the source fails every upload it fed, so nothing unverified is
 * stored anywhere. A failed destination does not stop the others: its transfers are cancelled,
 * every outcome is reported and none is thrown. Returns once nothing runs any more.
 */
export async function copyToMany(
  source: Remote,
  destinations: readonly (Destination | ManyDestination)[],
  options: CopyOptions = {},
): Promise<CopyManyResult> {
  const client = options.client ?? contextOf(options).client;
  const requestsBefore = client.requestCount;
  const warnings: string[] = [];
  const warn = (warning: string) => {
    warnings.push(warning);
    options.onWarning?.(warning);
  };
  const opened = await Promise.all(
    destinations.map((entry) => openDestination(entry, source, client, options)),
  );
  const live = opened.flatMap((entry) => ('target' in entry ? [entry] : []));
  const remotes = live.map((entry) => entry.source ?? source);
  const blobs = new BlobCopier(
    live.map((entry) => entry.target),
    {
      concurrency: options.concurrency ?? 8,
      locations: options.blobLocations ?? options.sources ?? source.context.blobLocations,
      shares: await sharing(remotes, options.signal, warn),
      signal: options.signal,
      onEvent: options.onEvent,
    },
  );
  const copied = await Promise.all(
    live.map(async (entry, index) => {
      const session = new CopySession(entry.target, blobs.lane(index), sessionOptions(options));
      try {
        const root = await session.push(remotes[index] as Remote, {
          deferManifest: true,
          skipIfPresent: true,
        });
        return { session, root, tags: await finish(session, root, entry.reference, options) };
      } catch (error) {
        blobs.drop(index);
        return { error };
      }
    }),
  );
  await blobs.settled();
  const requests = client.requestCount - requestsBefore;
  const total: BlobStats = { ...ZERO_STATS, bytesDownloaded: blobs.bytesDownloaded };
  const outcomes = opened.map((entry): DestinationOutcome => {
    const { destination } = entry;
    if (!('target' in entry)) return { status: 'failed', destination, error: entry.error };
    const done = copied[live.indexOf(entry)];
    if (!done || 'error' in done) return { status: 'failed', destination, error: done?.error };
    const copyResult = result(done.session, done.root, done.tags, requests);
    for (const field of COUNTED) total[field] += copyResult.blobs[field];
    return { status: 'copied', destination, result: copyResult };
  });
  return { destinations: outcomes, blobs: total, requests, warnings };
}

const ZERO_STATS: BlobStats = {
  mounted: 0,
  skipped: 0,
  uploaded: 0,
  bytesUploaded: 0,
  bytesDownloaded: 0,
};
const COUNTED = ['mounted', 'skipped', 'uploaded', 'bytesUploaded'] as const;

/** A destination opened for writing, or why it could not be. */
type OpenedDestination = { destination: string } & (
  | { reference: Reference | undefined; target: Store; source?: Remote }
  | { error: unknown }
);

/** Open a destination for writing, once its `@digest` (if any) is one the copy produces. */
async function openDestination(
  entry: Destination | ManyDestination,
  shared: Remote,
  client: RegistryClient,
  options: CopyOptions,
): Promise<OpenedDestination> {
  const many = typeof entry === 'object' && 'reference' in entry ? entry : undefined;
  const given = many ? many.reference : (entry as Destination);
  const source = many?.source;
  if (isStore(given)) {
    return { destination: given.description, reference: undefined, target: given, source };
  }
  const destination = typeof given === 'string' ? given : formatReference(given);
  try {
    const reference = typeof given === 'string' ? parseReference(given) : given;
    await checkDigest(source ?? shared, reference, options);
    const target = await openDestinationStore(reference, client, options);
    return { destination, reference, target, source };
  } catch (error) {
    return { destination, error };
  }
}

/**
 * Which destinations join a blob transfer that another one asked for: those copying the same
 * remote always (they walk the same tree), others when their tree holds the blob. Undefined
 * (everyone joins) when all copy the same remote; otherwise each tree is walked once (manifests
 * only, memoised by the remotes, so the copy does not load them again). A tree that cannot be
 * walked shares nothing with the others, and `warn` says so: its destinations still copy it, each
 * reading its blobs on its own.
 */
async function sharing(
  remotes: readonly Remote[],
  signal: AbortSignal | undefined,
  warn: (warning: string) => void,
): Promise<BlobCopierOptions['shares']> {
  const distinct = [...new Set(remotes)];
  if (distinct.length <= 1) return undefined;
  const walk = async (remote: Remote) => {
    try {
      return await blobDigests(remote, signal);
    } catch (error) {
      if (!signal?.aborted) {
        const why = error instanceof Error ? error.message : String(error);
        warn(
          `the blobs of ${remote.ref} could not be listed (${why}); the destinations copying it read them without sharing the other destinations' reads`,
        );
      }
      return new Set<string>();
    }
  };
  const trees = new Map(
    await Promise.all(distinct.map(async (remote) => [remote, await walk(remote)] as const)),
  );
  return (other, digest, requester) => {
    const remote = remotes[other] as Remote;
    return remote === remotes[requester] || (trees.get(remote)?.has(digest) ?? false);
  };
}

/** Digests of the blobs a remote references, children included (each manifest visited once). */
async function blobDigests(remote: Remote, signal: AbortSignal | undefined): Promise<Set<string>> {
  const digests = new Set<string>();
  const visited = new Set<string>();
  const visit = async (node: Remote): Promise<void> => {
    if (visited.has(node.digest)) return;
    visited.add(node.digest);
    if (node.kind === 'image') {
      for (const blob of node.blobs()) digests.add(blob.descriptor.digest);
      return;
    }
    await mapLimit(
      node.manifests,
      4,
      async (entry, _index, inner) => {
        if (isManifestMediaType(entry.mediaType) || isIndexMediaType(entry.mediaType)) {
          await visit(await node.child(entry, { signal: inner }));
        } else {
          digests.add(entry.digest);
        }
      },
      signal,
    );
  };
  await visit(remote);
  return digests;
}

/** Refuse a destination `@digest` the copy cannot produce, before anything is written. */
async function checkDigest(source: Remote, reference: Reference, options: CopyOptions) {
  const expected = reference.digest;
  if (expected === undefined) return;
  const toOci = options.ociMediatypes ?? false;
  const { digest } = (await convertedManifest(source, toOci, options.signal)).descriptor;
  if (digest === expected) return;
  const where = formatReference(reference);
  const why = digest === source.digest ? 'source' : 'converted';
  throw new DestinationDigestError(where, expected, digest, why);
}

function sessionOptions(options: CopyOptions): CopySessionOptions {
  return {
    ociMediatypes: options.ociMediatypes ?? false,
    referrers: options.referrers ?? false,
    signal: options.signal,
    onEvent: options.onEvent,
  };
}

function isStore(destination: Destination): destination is Store {
  return typeof destination === 'object' && !('kind' in destination);
}

/** The store a destination reference names, a missing layout directory created. */
function openDestinationStore(
  reference: Reference,
  client: RegistryClient,
  options: CopyOptions,
): Promise<Store> {
  return openStore(reference, { client, context: options.context, create: true });
}

/** Open a copy session into the one destination a reference names (an index build's). */
export async function openSession(
  reference: Reference,
  client: RegistryClient,
  source: Remote | undefined,
  options: CopyOptions,
): Promise<CopySession> {
  const locations = options.blobLocations ?? options.sources ?? source?.context.blobLocations;
  if (!locations) throw new TypeError('copy needs blob locations when there is no source remote');
  const target = await openDestinationStore(reference, client, options);
  return sessionInto(target, locations, options).session;
}

/**
 * A copy session into one store, and the blob copier behind it (whose `settled()` says when
 * nothing runs any more, and whose `drop(0)` cancels what still runs after a failure).
 */
export function sessionInto(
  target: Store,
  locations: BlobLocations,
  options: CopyOptions,
): { session: CopySession; blobs: BlobCopier } {
  const blobs = new BlobCopier([target], {
    concurrency: options.concurrency ?? 8,
    locations,
    signal: options.signal,
    onEvent: options.onEvent,
  });
  return { session: new CopySession(target, blobs.lane(0), sessionOptions(options)), blobs };
}

/** Store the root manifest under every tag (last), or by digest when there is none. */
export async function finish(
  session: CopySession,
  root: PushedManifest,
  reference: Reference | undefined,
  options: CopyOptions,
): Promise<string[]> {
  const { signal, onEvent } = options;
  const target = session.target.description;
  const own = reference?.tag ? [reference.tag] : [];
  const tags = [...new Set([...own, ...(options.tags ?? [])])];
  if (tags.length === 0) {
    await session.storeManifest(root);
    await session.target.keepUntagged(root.descriptor, { signal });
    return tags;
  }
  for (const tag of tags) {
    await session.target.tag(root.descriptor, root.bytes, tag, { signal });
    onEvent?.({ type: 'manifest-pushed', descriptor: root.descriptor, tag, target });
  }
  return tags;
}

/** The result object of a finished session. */
export function result(
  session: CopySession,
  root: PushedManifest,
  tags: readonly string[],
  requests: number,
): CopyResult {
  return {
    digest: root.descriptor.digest,
    mediaType: root.descriptor.mediaType,
    size: root.descriptor.size,
    blobs: { ...session.stats },
    requests,
    tags,
    converted: new Map(session.converted),
  };
}
