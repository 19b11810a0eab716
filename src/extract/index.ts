/**
 * Image layers applied to a directory as a container runtime would: tar reading, gzip and zstd
 * decompression, OCI whiteouts, diff_ids checked while streaming. Below `remote`: it reads
 * layers through {@link ExtractableImage}, so any image with a way to open its layers fits.
 */

export {
  type ExtractableImage,
  ExtractError,
  type ExtractOptions,
  type ExtractResult,
  extract,
} from './extract.ts';
