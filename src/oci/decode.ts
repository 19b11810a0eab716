import { isDigest, parseDigest } from '../digest/index.ts';
import { ImageConfigInvalidError, JsonInvalidError, ManifestInvalidError } from './errors.ts';
import { isIndexMediaType, isManifestMediaType, OCI_INDEX, OCI_MANIFEST } from './media-types.ts';
import type {
  DecodedManifest,
  Descriptor,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  Platform,
} from './types.ts';

/**
 * Parse JSON read from outside (a registry, a layout, a service).
 * @param what names the document in the error, e.g. `config sha256:… of ghcr.io/org/app:1`
 * @throws JsonInvalidError (`JSON_INVALID`) keeping the parser's `SyntaxError` as `cause`
 */
export function decodeJson(bytes: Uint8Array | string, what: string): unknown {
  const text =
    typeof bytes === 'string'
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new JsonInvalidError(what, (error as Error).message, { cause: error });
  }
}

/**
 * Decode and validate manifest bytes fetched as `mediaType`: an image manifest or an index,
 * every descriptor checked (see {@link checkDescriptor}), so later code can trust the types.
 * Unknown fields are kept.
 * @param where names the manifest in the error
 * @throws ManifestInvalidError (`MANIFEST_INVALID`), with the parser's error as `cause` for bad JSON
 */
export function decodeManifest(
  bytes: Uint8Array | string,
  mediaType: string,
  where: string,
): DecodedManifest {
  const json = manifestJson(bytes, where);
  if (isIndexMediaType(mediaType))
    return { kind: 'index', index: checkIndex(json, where, mediaType) };
  if (isManifestMediaType(mediaType)) {
    return { kind: 'image', manifest: checkManifest(json, where, mediaType) };
  }
  throw new ManifestInvalidError(where, `unsupported manifest media type ${mediaType}`);
}

/**
 * Validate parsed JSON as an image index (or Docker manifest list) of `mediaType`, which its
 * `mediaType` field must name when present.
 * @throws ManifestInvalidError (`MANIFEST_INVALID`)
 */
export function checkIndex(value: unknown, where: string, mediaType = OCI_INDEX): ImageIndex {
  const doc = checkTopLevel(value, where, mediaType);
  if (!Array.isArray(doc.manifests)) fail(where, 'manifests must be an array');
  checkDescriptors(doc.manifests, 'manifests', where);
  return doc as unknown as ImageIndex;
}

/**
 * Validate parsed JSON as an image manifest (OCI or Docker schema 2), as {@link checkIndex}.
 * @throws ManifestInvalidError (`MANIFEST_INVALID`)
 */
export function checkManifest(
  value: unknown,
  where: string,
  mediaType = OCI_MANIFEST,
): ImageManifest {
  const doc = checkTopLevel(value, where, mediaType);
  checkDescriptor(doc.config, where, 'config');
  if (!Array.isArray(doc.layers)) fail(where, 'layers must be an array');
  checkDescriptors(doc.layers, 'layers', where);
  return doc as unknown as ImageManifest;
}

/**
 * Validate parsed JSON as a descriptor: a non-empty `mediaType`, a supported digest, a
 * non-negative integer size, and, when present, string `urls`, `annotations` and `artifactType`
 * and a `platform` with `os` and `architecture`. Unknown fields are kept.
 * @param field where the descriptor sits in its document, e.g. `manifests[2]`
 * @throws ManifestInvalidError (`MANIFEST_INVALID`), with the digest parser's error as `cause`
 */
export function checkDescriptor(value: unknown, where: string, field = 'descriptor'): Descriptor {
  if (!isObject(value)) fail(where, `${field} must be a descriptor object`);
  if (typeof value.mediaType !== 'string' || value.mediaType === '') {
    fail(where, `${field}.mediaType must be a non-empty string`);
  }
  if (!isDigest(value.digest)) {
    let cause: unknown;
    try {
      if (typeof value.digest === 'string') parseDigest(value.digest);
    } catch (error) {
      cause = error;
    }
    fail(where, `${field}.digest is not a supported digest`, cause);
  }
  if (!Number.isSafeInteger(value.size) || (value.size as number) < 0) {
    fail(where, `${field}.size must be a non-negative integer`);
  }
  if (value.urls !== undefined && !isStringArray(value.urls)) {
    fail(where, `${field}.urls must be a list of strings`);
  }
  if (value.annotations !== undefined && !isStringRecord(value.annotations)) {
    fail(where, `${field}.annotations must be an object of strings`);
  }
  if (value.artifactType !== undefined && typeof value.artifactType !== 'string') {
    fail(where, `${field}.artifactType must be a string`);
  }
  if (value.platform !== undefined && !isPlatform(value.platform)) {
    fail(where, `${field}.platform needs os and architecture strings`);
  }
  return value as unknown as Descriptor;
}

/**
 * The media type of manifest bytes found by digest alone, as BuildKit's
 * `DetectManifestBlobMediaType`: the `mediaType` field, else a `config` means an OCI image
 * manifest and `manifests` an OCI index.
 * @throws ManifestInvalidError (`MANIFEST_INVALID`) when the bytes are not JSON or are neither
 */
export function detectManifestMediaType(bytes: Uint8Array | string, where: string): string {
  const json = manifestJson(bytes, where);
  const doc = isObject(json) ? json : {};
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  if (doc.config !== undefined) return OCI_MANIFEST;
  if (doc.manifests !== undefined) return OCI_INDEX;
  return fail(where, 'neither an image manifest nor an index');
}

/**
 * Decode image config bytes (OCI or Docker): JSON with `os`, `architecture` and
 * `rootfs.diff_ids`. Other fields are kept.
 * @throws JsonInvalidError (`JSON_INVALID`) for bad JSON, ImageConfigInvalidError
 * (`CONFIG_INVALID`) for a JSON document that is no image config
 */
export function decodeImageConfig(bytes: Uint8Array | string, where: string): ImageConfig {
  return checkImageConfig(decodeJson(bytes, where), where);
}

/**
 * Validate parsed JSON as an image config, as {@link decodeImageConfig}.
 * @throws ImageConfigInvalidError (`CONFIG_INVALID`)
 */
export function checkImageConfig(json: unknown, where: string): ImageConfig {
  if (!isObject(json)) throw new ImageConfigInvalidError(where, 'not a JSON object');
  if (typeof json.os !== 'string' || typeof json.architecture !== 'string') {
    throw new ImageConfigInvalidError(where, 'os and architecture must be strings');
  }
  const rootfs = json.rootfs;
  if (!isObject(rootfs) || !Array.isArray(rootfs.diff_ids) || !rootfs.diff_ids.every(isDigest)) {
    throw new ImageConfigInvalidError(where, 'rootfs.diff_ids must be a list of digests');
  }
  return json as ImageConfig;
}

/** A plain JSON object (not null, not an array). */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function manifestJson(bytes: Uint8Array | string, where: string): unknown {
  try {
    return decodeJson(bytes, where);
  } catch (error) {
    const reason = error instanceof JsonInvalidError ? error.reason : String(error);
    throw new ManifestInvalidError(where, `not JSON (${reason})`, { cause: error });
  }
}

/** Fields every manifest and index shares: schemaVersion, mediaType, subject, annotations. */
function checkTopLevel(value: unknown, where: string, mediaType: string): Record<string, unknown> {
  if (!isObject(value)) fail(where, 'not a JSON object');
  if (value.schemaVersion !== 2) fail(where, 'schemaVersion must be 2');
  if (value.mediaType !== undefined && value.mediaType !== mediaType) {
    const found =
      typeof value.mediaType === 'string' ? value.mediaType : JSON.stringify(value.mediaType);
    fail(where, `mediaType ${found} does not match the announced ${mediaType}`);
  }
  if (value.artifactType !== undefined && typeof value.artifactType !== 'string') {
    fail(where, 'artifactType must be a string');
  }
  if (value.annotations !== undefined && !isStringRecord(value.annotations)) {
    fail(where, 'annotations must be an object of strings');
  }
  if (value.subject !== undefined) checkDescriptor(value.subject, where, 'subject');
  return value;
}

function checkDescriptors(list: readonly unknown[], field: string, where: string): void {
  for (const [i, entry] of list.entries()) checkDescriptor(entry, where, `${field}[${i}]`);
}

function fail(where: string, reason: string, cause?: unknown): never {
  throw new ManifestInvalidError(where, reason, cause === undefined ? undefined : { cause });
}

function isPlatform(value: unknown): value is Platform {
  return isObject(value) && typeof value.os === 'string' && typeof value.architecture === 'string';
}

function isStringRecord(value: unknown): boolean {
  return isObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

function isStringArray(value: unknown): boolean {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
