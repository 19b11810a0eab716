import { InvalidDigestError, parseDigest } from '../digest/index.ts';
import { LayoutInvalidError } from './errors.ts';
import { type Descriptor, type ImageIndex, MediaTypes } from './types.ts';

/**
 * Check that `value` is a descriptor with a safe digest and size, and return it typed.
 * Unknown fields are kept, so rewriting `index.json` never drops what another tool put there.
 */
export function parseDescriptor(value: unknown, path: string, where: string): Descriptor {
  const fail = (reason: string, cause?: unknown): never => {
    throw new LayoutInvalidError(path, `${where}: ${reason}`, { cause });
  };
  if (!isObject(value)) return fail('descriptor is not an object');
  if (typeof value.mediaType !== 'string') fail('mediaType is not a string');
  try {
    parseDigest(value.digest as string);
  } catch (error) {
    if (!(error instanceof InvalidDigestError)) throw error;
    fail(error.message, error);
  }
  if (!Number.isSafeInteger(value.size) || (value.size as number) < 0) {
    fail('size is not a non-negative integer');
  }
  if (value.annotations !== undefined && !isStringRecord(value.annotations)) {
    fail('annotations is not an object of strings');
  }
  if (value.urls !== undefined && !isStringArray(value.urls)) fail('urls is not a list of strings');
  if (value.artifactType !== undefined && typeof value.artifactType !== 'string') {
    fail('artifactType is not a string');
  }
  const platform = value.platform;
  if (
    platform !== undefined &&
    !(
      isObject(platform) &&
      typeof platform.os === 'string' &&
      typeof platform.architecture === 'string'
    )
  ) {
    fail('platform needs os and architecture strings');
  }
  return value as unknown as Descriptor;
}

/** Check that `value` is an OCI image index (as found in `index.json`) and return it typed. */
export function parseImageIndex(value: unknown, path: string): ImageIndex {
  if (!isObject(value)) throw new LayoutInvalidError(path, 'not a JSON object');
  if (value.schemaVersion !== 2) throw new LayoutInvalidError(path, 'schemaVersion is not 2');
  if (value.mediaType !== undefined && value.mediaType !== MediaTypes.ociIndex) {
    throw new LayoutInvalidError(path, `mediaType is not ${MediaTypes.ociIndex}`);
  }
  if (!Array.isArray(value.manifests))
    throw new LayoutInvalidError(path, 'manifests is not a list');
  value.manifests.forEach((entry, i) => {
    parseDescriptor(entry, path, `manifests[${i}]`);
  });
  if (value.subject !== undefined) parseDescriptor(value.subject, path, 'subject');
  if (value.annotations !== undefined && !isStringRecord(value.annotations)) {
    throw new LayoutInvalidError(path, 'annotations is not an object of strings');
  }
  return value as unknown as ImageIndex;
}

/** Parse JSON text, turning a syntax error into {@link LayoutInvalidError}. */
export function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new LayoutInvalidError(path, `not valid JSON (${(error as Error).message})`, {
      cause: error,
    });
  }
}

/** A plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringRecord(value: unknown): boolean {
  return isObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

function isStringArray(value: unknown): boolean {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
