import type { LayoutStore } from '../layout/index.ts';
import type { Remote } from '../remote/remote-index.ts';
import type { UnlazyImageOptions } from '../remote/remote-manifest.ts';
import { type CopyOptions, copy, sessionInto } from './copy.ts';
import type { CopyEvent, CopyResult } from './events.ts';

/**
 * Download `remote` into a layout: a copy into the store through the copy engine (its defaults,
 * its sharing of reads and writes, its events and figures), then the root listed in
 * `index.json` under `options.tag`, or untagged without one. What `RemoteManifest.unlazy` does.
 */
export function unlazy(
  remote: Remote,
  store: LayoutStore,
  options: UnlazyImageOptions = {},
): Promise<CopyResult> {
  return copy(remote, store, {
    ...copyOptions(remote, options),
    tags: options.tag === undefined ? [] : [options.tag],
  });
}

/**
 * Download everything `remote` references and its manifest blob into a layout, through the copy
 * engine, without listing the root in `index.json`.
 */
export async function unlazyContent(
  remote: Remote,
  store: LayoutStore,
  options: UnlazyImageOptions = {},
): Promise<void> {
  const { session, blobs } = sessionInto(
    store,
    remote.context.blobLocations,
    copyOptions(remote, options),
  );
  try {
    await session.push(remote);
  } catch (error) {
    blobs.drop(0);
    throw error;
  } finally {
    await blobs.settled();
  }
}

/** The copy options of an unlazy: its context, its concurrency, and progress as copy events. */
function copyOptions(remote: Remote, options: UnlazyImageOptions): CopyOptions {
  const { onProgress, signal, concurrency } = options;
  const onEvent =
    onProgress &&
    ((event: CopyEvent) => {
      if (event.type !== 'blob-progress' || signal?.aborted) return;
      onProgress({ digest: event.digest, ref: remote.ref, bytes: event.bytes, total: event.size });
    });
  return { context: remote.context.library, concurrency, signal, onEvent };
}
