const PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): neither content nor a deletion. */
const META_PREFIX = '.wh..wh.';

/** What a whiteout file in a layer asks for (OCI image-spec, "Representing Changes"). */
export type Whiteout =
  /** `.wh..wh..opq`: hide everything lower layers put in this directory. */
  | { readonly kind: 'opaque' }
  /** `.wh.NAME`: delete NAME (and all below it) from lower layers. */
  | { readonly kind: 'delete'; readonly name: string }
  /** `.wh..wh.*` other than the opaque marker: skip. */
  | { readonly kind: 'meta' };

/** The whiteout a file name stands for, or undefined for an ordinary name. */
export function whiteoutOf(name: string): Whiteout | undefined {
  if (!name.startsWith(PREFIX)) return undefined;
  if (name === OPAQUE) return { kind: 'opaque' };
  if (name.startsWith(META_PREFIX)) return { kind: 'meta' };
  return { kind: 'delete', name: name.slice(PREFIX.length) };
}
