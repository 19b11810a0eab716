import {
  checkDescriptor,
  checkIndex,
  decodeJson,
  JsonInvalidError,
  ManifestInvalidError,
  OCI_INDEX,
} from '../oci/index.ts';
import { LayoutInvalidError } from './errors.ts';
import type { Descriptor, ImageIndex } from './types.ts';

/**
 * Check that `value` is a descriptor with a safe digest and size (the OCI decoder's rules), and
 * return it typed. Unknown fields are kept, so rewriting `index.json` never drops what another
 * tool put there.
 * @param field where the descriptor sits, e.g. `manifests[2]`
 * @throws LayoutInvalidError with the decoder's `MANIFEST_INVALID` error as `cause`
 */
export function parseDescriptor(value: unknown, path: string, field: string): Descriptor {
  return asLayoutError(path, () => checkDescriptor(value, path, field));
}

/** Check that `value` is an OCI image index (as found in `index.json`) and return it typed. */
export function parseImageIndex(value: unknown, path: string): ImageIndex {
  return asLayoutError(path, () => checkIndex(value, path, OCI_INDEX));
}

/** Parse JSON text, turning a syntax error into {@link LayoutInvalidError} (the parser's as cause). */
export function parseJson(text: string, path: string): unknown {
  return asLayoutError(path, () => decodeJson(text, path));
}

/** A plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The decoder's verdict on a layout file, as the layout's own error (`LAYOUT_INVALID`). */
function asLayoutError<T>(path: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof JsonInvalidError) {
      throw new LayoutInvalidError(path, `not valid JSON (${error.reason})`, { cause: error });
    }
    if (error instanceof ManifestInvalidError) {
      throw new LayoutInvalidError(path, error.reason, { cause: error });
    }
    throw error;
  }
}
