import { isDigest } from '../digest/index.ts';
import { detectManifestMediaType } from '../oci/index.ts';
import { formatReference } from '../reference/index.ts';
import { NotFoundInLayoutError } from './errors.ts';
import { findTag } from './tags.ts';
import type { Descriptor } from './types.ts';

/** What {@link lookUp} reads of a layout. */
export interface LookupLayout {
  readonly dir: string;
  index(): Promise<{ readonly manifests: readonly Descriptor[] }>;
  /** Entries that are not referrers of another manifest. */
  images(options: { signal?: AbortSignal }): Promise<Descriptor[]>;
  info(digest: string): Promise<{ digest: string; size: number } | undefined>;
  readBytes(digest: string, options: { signal?: AbortSignal }): Promise<Buffer>;
}

/**
 * The manifest `reference` names in a layout: a tag (`io.containerd.image.name`, then
 * `ref.name`); a digest, from its `index.json` entry, or for a manifest blob the index does not
 * list (as BuildKit's local cache import reads one) with the media type its bytes state; or,
 * without a reference, the only image of the layout, else the one tagged `latest`.
 * @throws NotFoundInLayoutError when there is no such manifest
 */
export async function lookUp(
  layout: LookupLayout,
  reference: string | undefined,
  signal?: AbortSignal,
): Promise<Descriptor> {
  const found = await find(layout, reference, signal);
  if (found) return found;
  const named =
    reference === undefined ? {} : isDigest(reference) ? { digest: reference } : { tag: reference };
  throw new NotFoundInLayoutError(formatReference({ kind: 'layout', path: layout.dir, ...named }));
}

async function find(
  layout: LookupLayout,
  reference: string | undefined,
  signal: AbortSignal | undefined,
): Promise<Descriptor | undefined> {
  const { manifests } = await layout.index();
  if (reference === undefined) {
    // Referrers recorded beside an image (signatures, SBOMs) do not make the choice ambiguous.
    const images = await layout.images({ signal });
    return images.length === 1 ? images[0] : findTag(manifests, 'latest');
  }
  if (!isDigest(reference)) return findTag(manifests, reference);
  const listed = manifests.find((entry) => entry.digest === reference);
  if (listed) return listed;
  const stored = await layout.info(reference);
  if (!stored) return undefined;
  const bytes = await layout.readBytes(reference, { signal });
  return { mediaType: detectManifestMediaType(bytes, `manifest ${reference}`), ...stored };
}
