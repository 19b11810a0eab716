import { OciferryError } from '../errors.ts';
import { parseReference, type Reference } from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import type { Remote } from '../remote/remote-index.ts';
import { defaultClient } from '../remote/resolve.ts';
import type { SourceIndex } from '../remote/sources.ts';
import { CopySession, type PushedManifest } from './copy-session.ts';
import type { CopyEvent, CopyResult } from './events.ts';
import { openTarget } from './open-target.ts';

/** Options of {@link copy} and {@link buildIndex}. */
export interface CopyOptions {
  /** Client for the target (and for counting requests); default the shared client. */
  client?: RegistryClient;
  /** Blob transfers at once, default 8. */
  concurrency?: number;
  /** Rewrite Docker schema 2 manifests and lists with OCI media types (blobs unchanged). */
  ociMediatypes?: boolean;
  /** Tags to create besides the destination's own tag. */
  tags?: readonly string[];
  /** Also copy manifests whose subject is a copied manifest (signatures, SBOMs). */
  referrers?: boolean;
  /** Known blob locations used to pick mount sources; default the source's. */
  sources?: SourceIndex;
  signal?: AbortSignal;
  onEvent?: (event: CopyEvent) => void;
}

/** A destination that names a digest the copy would not produce. */
export class DestinationDigestError extends OciferryError {
  constructor(destination: string, expected: string, actual: string) {
    super(
      'DIGEST_MISMATCH',
      `${destination} names ${expected}, but the copy produces ${actual}; drop the digest or the conversion`,
    );
  }
}

/**
 * Copy an image or a whole index to a registry repository or an OCI layout. Per blob: exists ->
 * skip, else mount from a known source on the target's host, else stream from the source with
 * verification en route; manifests after their children, tags last. Without a tag in the
 * destination (and no `tags`), the copy is by digest only and creates no tag.
 */
export async function copy(
  source: Remote,
  destination: string | Reference,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const reference = typeof destination === 'string' ? parseReference(destination) : destination;
  const client = options.client ?? defaultClient();
  const requestsBefore = client.requestCount;
  const session = await openSession(reference, client, source, options);
  const root = await session.push(source, { deferManifest: true });
  const tags = await finish(session, root, reference, options);
  return result(session, root, tags, client.requestCount - requestsBefore);
}

/** Open a copy session into the destination a reference names. */
export async function openSession(
  reference: Reference,
  client: RegistryClient,
  source: Remote | undefined,
  options: CopyOptions,
): Promise<CopySession> {
  const target = await openTarget(reference, client);
  const sources = options.sources ?? source?.context.sources;
  if (!sources) throw new TypeError('copy needs a source index when there is no source remote');
  return new CopySession(target, {
    concurrency: options.concurrency ?? 8,
    ociMediatypes: options.ociMediatypes ?? false,
    referrers: options.referrers ?? false,
    sources,
    signal: options.signal,
    onEvent: options.onEvent,
  });
}

/** Store the root manifest under every tag (last), or by digest when there is none. */
export async function finish(
  session: CopySession,
  root: PushedManifest,
  reference: Reference,
  options: CopyOptions,
): Promise<string[]> {
  const { signal, onEvent } = options;
  if (reference.digest && reference.digest !== root.descriptor.digest) {
    throw new DestinationDigestError(
      session.target.description,
      reference.digest,
      root.descriptor.digest,
    );
  }
  const tags = [...new Set([...(reference.tag ? [reference.tag] : []), ...(options.tags ?? [])])];
  if (tags.length === 0) {
    await session.storeManifest(root);
    await session.target.keepUntagged(root.descriptor, { signal });
    return tags;
  }
  for (const tag of tags) {
    await session.target.tag(root.descriptor, root.bytes, tag, { signal });
    onEvent?.({ type: 'manifest-pushed', descriptor: root.descriptor, tag });
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
