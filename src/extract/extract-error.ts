import { OciferryError } from '../errors.ts';

/**
 * Stable codes of {@link ExtractError}: `TAR_ENTRY_UNSAFE` (an entry would land outside the
 * directory), `DIFF_ID_MISMATCH` (a layer does not unpack to the config's diff_id),
 * `COMPRESSION_UNSUPPORTED`, `TAR_ENTRY_UNSUPPORTED` (sparse files, unknown entry types),
 * `TAR_INVALID` (a malformed archive) and `LAYER_CORRUPT` (the compressed stream is broken).
 */
export type ExtractErrorCode =
  | 'TAR_ENTRY_UNSAFE'
  | 'DIFF_ID_MISMATCH'
  | 'COMPRESSION_UNSUPPORTED'
  | 'TAR_ENTRY_UNSUPPORTED'
  | 'TAR_INVALID'
  | 'LAYER_CORRUPT';

/** Extracting image layers into a directory failed; `code` says why, `entry` names the culprit. */
export class ExtractError extends OciferryError {
  declare readonly code: ExtractErrorCode;
  /** The tar entry at fault, spelled as in the archive, when there is one. */
  readonly entry: string | undefined;
  /** Digest of the layer being extracted, once known. */
  readonly layer: string | undefined;

  constructor(
    code: ExtractErrorCode,
    message: string,
    options: { cause?: unknown; entry?: string; layer?: string } = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.entry = options.entry;
    this.layer = options.layer;
  }
}
