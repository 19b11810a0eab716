import { isDigest } from '../digest/index.ts';
import { OciferryError } from '../errors.ts';
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  isManifestMediaType,
} from '../registry/oci.ts';

/** Manifest bytes that are not a well-formed image manifest or index. */
export class ManifestInvalidError extends OciferryError {
  constructor(where: string, reason: string) {
    super('MANIFEST_INVALID', `${where}: invalid manifest: ${reason}`);
  }
}

/** A decoded manifest: an image (config + layers) or an index (child manifests). */
export type DecodedManifest =
  | { readonly kind: 'image'; readonly manifest: ImageManifest }
  | { readonly kind: 'index'; readonly index: ImageIndex };

/**
 * Decode and validate manifest bytes fetched as `mediaType`. Every descriptor is checked
 * (digest syntax, non-negative integer size, string media type), so later code can trust it.
 */
export function decodeManifest(
  bytes: Uint8Array,
  mediaType: string,
  where: string,
): DecodedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new ManifestInvalidError(where, `not JSON (${(error as Error).message})`);
  }
  if (!isObject(json)) throw new ManifestInvalidError(where, 'not a JSON object');
  if (json.schemaVersion !== 2) throw new ManifestInvalidError(where, 'schemaVersion must be 2');
  if (json.mediaType !== undefined && json.mediaType !== mediaType) {
    throw new ManifestInvalidError(
      where,
      `mediaType ${String(json.mediaType)} does not match the announced ${mediaType}`,
    );
  }
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(json.manifests))
      throw new ManifestInvalidError(where, 'manifests must be an array');
    checkDescriptors(json.manifests, 'manifests', where);
    checkOptionalSubject(json, where);
    return { kind: 'index', index: json as unknown as ImageIndex };
  }
  if (isManifestMediaType(mediaType)) {
    checkDescriptor(json.config, 'config', where);
    if (!Array.isArray(json.layers))
      throw new ManifestInvalidError(where, 'layers must be an array');
    checkDescriptors(json.layers, 'layers', where);
    checkOptionalSubject(json, where);
    return { kind: 'image', manifest: json as unknown as ImageManifest };
  }
  throw new ManifestInvalidError(where, `unsupported manifest media type ${mediaType}`);
}

function checkOptionalSubject(json: Record<string, unknown>, where: string): void {
  if (json.subject !== undefined) checkDescriptor(json.subject, 'subject', where);
}

function checkDescriptors(list: unknown[], field: string, where: string): void {
  for (const [i, entry] of list.entries()) checkDescriptor(entry, `${field}[${i}]`, where);
}

function checkDescriptor(
  value: unknown,
  field: string,
  where: string,
): asserts value is Descriptor {
  if (!isObject(value))
    throw new ManifestInvalidError(where, `${field} must be a descriptor object`);
  if (typeof value.mediaType !== 'string' || value.mediaType === '') {
    throw new ManifestInvalidError(where, `${field}.mediaType must be a non-empty string`);
  }
  if (!isDigest(value.digest)) {
    throw new ManifestInvalidError(where, `${field}.digest is not a supported digest`);
  }
  if (typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw new ManifestInvalidError(where, `${field}.size must be a non-negative integer`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
