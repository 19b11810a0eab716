import { DigestMismatchError, digestBytes, isDigest, parseDigest } from '../digest/index.ts';
import { type Descriptor, decodeJson, MANIFEST_MEDIA_TYPES } from '../oci/index.ts';
import { discardBody, readBody } from './body.ts';
import { checkStoredDigest, contradicts } from './content-digest.ts';
import { type RepositoryContext, scopes } from './context.ts';
import { RegistryError } from './errors.ts';
import { type HttpResponse, headerValue, headerValues } from './http.ts';
import { redactUrl } from './redact.ts';
import { withRetry } from './retry.ts';

/** Options of {@link getManifest} and {@link headManifest}. */
export interface ManifestReadOptions {
  /** `Accept` media types; default all four manifest types ({@link MANIFEST_MEDIA_TYPES}). */
  accept?: readonly string[];
  signal?: AbortSignal;
}

/** A manifest's verified bytes and its descriptor. */
export interface FetchedManifest {
  descriptor: Descriptor;
  bytes: Buffer;
}

/** Options of {@link putManifest}. */
export interface PutManifestOptions {
  /** More tags for the same manifest: sent as `?tag=` and, where the registry ignores that, one PUT each. */
  tags?: readonly string[];
  signal?: AbortSignal;
}

/** What the registry said about a manifest it stored. */
export interface PutManifestResult {
  digest: string;
  /** `OCI-Subject`: the registry indexed the manifest's `subject` for the referrers API. */
  subject?: string;
}

function manifestPath(context: RepositoryContext, reference: string, query = ''): string {
  return `/v2/${context.name}/manifests/${reference}${query}`;
}

/**
 * GET a manifest by tag or digest, read under the size cap, digest verified (against the
 * reference when it is a digest, against `Docker-Content-Digest` when present) and its media type
 * checked against `Content-Type`.
 */
export async function getManifest(
  context: RepositoryContext,
  reference: string,
  options: ManifestReadOptions = {},
): Promise<FetchedManifest> {
  return withRetry(
    context.retry,
    async () => {
      const response = await context.transport.request(context.registry, {
        method: 'GET',
        path: manifestPath(context, reference),
        headers: { accept: (options.accept ?? MANIFEST_MEDIA_TYPES).join(', ') },
        scopes: scopes(context, 'pull'),
        repository: context.name,
        expect: [200],
        notFoundCode: 'MANIFEST_UNKNOWN',
        signal: options.signal,
      });
      const bytes = await readBody(response, 'GET', context.manifestSizeLimit, 'manifest');
      return { descriptor: describeManifest(response, reference, bytes), bytes };
    },
    options.signal,
  );
}

/**
 * HEAD a manifest: its descriptor without its body, or undefined when the registry does not have
 * it. Falls back to a GET when the registry leaves out the digest, size or media type.
 */
export async function headManifest(
  context: RepositoryContext,
  reference: string,
  options: ManifestReadOptions = {},
): Promise<Descriptor | undefined> {
  const found = await withRetry(
    context.retry,
    async () => {
      const response = await context.transport.request(context.registry, {
        method: 'HEAD',
        path: manifestPath(context, reference),
        headers: { accept: (options.accept ?? MANIFEST_MEDIA_TYPES).join(', ') },
        scopes: scopes(context, 'pull'),
        repository: context.name,
        expect: [200, 404],
        signal: options.signal,
      });
      await discardBody(response);
      return response;
    },
    options.signal,
  );
  if (found.status === 404) return undefined;
  const header = headerValue(found.headers, 'docker-content-digest');
  const digest = isDigest(reference) ? reference : header;
  if (isDigest(reference) && contradicts(header, reference)) {
    throw new DigestMismatchError({
      expected: reference,
      actual: header,
      source: redactUrl(found.url),
    });
  }
  const size = Number(headerValue(found.headers, 'content-length'));
  const mediaType = contentType(found);
  if (!isDigest(digest) || !Number.isSafeInteger(size) || size < 0 || mediaType === undefined) {
    try {
      return (await getManifest(context, reference, options)).descriptor;
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) return undefined;
      throw err;
    }
  }
  return { mediaType, digest, size };
}

/**
 * PUT a manifest under a tag or its digest with `Content-Type: mediaType`. The bytes are sent
 * exactly as given; their digest is computed here and checked against the registry's answer.
 */
export async function putManifest(
  context: RepositoryContext,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
  options: PutManifestOptions = {},
): Promise<PutManifestResult> {
  const byDigest = isDigest(reference);
  const digest = digestBytes(bytes, byDigest ? parseDigest(reference).algorithm : 'sha256');
  if (byDigest && digest !== reference) {
    throw new DigestMismatchError({
      expected: reference,
      actual: digest,
      source: 'manifest to push',
    });
  }
  const declared = manifestFields(bytes).mediaType;
  if (declared !== undefined && declared !== mediaType) {
    throw new RegistryError({
      code: 'MEDIA_TYPE_MISMATCH',
      method: 'PUT',
      url: manifestPath(context, reference),
      message: `manifest declares mediaType ${declared} but is being pushed as ${mediaType}`,
    });
  }
  const tags = [...new Set(options.tags ?? [])].filter((tag) => tag !== reference);
  const query =
    byDigest && tags.length > 0
      ? `?${tags.map((t) => `tag=${encodeURIComponent(t)}`).join('&')}`
      : '';
  const put = (ref: string, search: string) =>
    withRetry(
      context.retry,
      async () => {
        const response = await context.transport.request(context.registry, {
          method: 'PUT',
          path: manifestPath(context, ref, search),
          headers: { 'content-type': mediaType },
          body: bytes,
          scopes: scopes(context, 'pull', 'push'),
          repository: context.name,
          expect: [200, 201, 202, 204],
          signal: options.signal,
        });
        await discardBody(response);
        checkStoredDigest(response, digest);
        return response;
      },
      options.signal,
    );
  const response = await put(reference, query);
  const acknowledged = new Set(
    headerValues(response.headers, 'oci-tag').flatMap((v) => v.split(',').map((t) => t.trim())),
  );
  for (const tag of tags) {
    if (!acknowledged.has(tag)) await put(tag, '');
  }
  const subject = headerValue(response.headers, 'oci-subject');
  return subject === undefined ? { digest } : { digest, subject };
}

/** Descriptor of fetched manifest bytes, after checking digest and media type. */
function describeManifest(response: HttpResponse, reference: string, bytes: Buffer): Descriptor {
  const source = redactUrl(response.url);
  const header = headerValue(response.headers, 'docker-content-digest');
  const expected = [reference, header].filter((d): d is string => isDigest(d));
  for (const want of expected) {
    const actual = digestBytes(bytes, parseDigest(want).algorithm);
    if (actual !== want) throw new DigestMismatchError({ expected: want, actual, source });
  }
  const digest = expected[0] ?? digestBytes(bytes);
  const fromHeader = contentType(response);
  const { mediaType: fromBody, artifactType } = manifestFields(bytes);
  if (fromHeader !== undefined && fromBody !== undefined && fromHeader !== fromBody) {
    throw new RegistryError({
      code: 'MEDIA_TYPE_MISMATCH',
      status: response.status,
      method: 'GET',
      url: source,
      message: `GET ${source}: Content-Type ${fromHeader} does not match the manifest's mediaType ${fromBody}`,
    });
  }
  const mediaType = fromBody ?? fromHeader;
  if (mediaType === undefined) {
    throw new RegistryError({
      code: 'MEDIA_TYPE_MISMATCH',
      status: response.status,
      method: 'GET',
      url: source,
      message: `GET ${source}: neither Content-Type nor the manifest names a media type`,
    });
  }
  return artifactType === undefined
    ? { mediaType, digest, size: bytes.length }
    : { mediaType, digest, size: bytes.length, artifactType };
}

/** `Content-Type` without parameters, or undefined when absent. */
function contentType(response: HttpResponse): string | undefined {
  const value = headerValue(response.headers, 'content-type')?.split(';')[0]?.trim();
  return value === '' ? undefined : value;
}

/** The `mediaType` and `artifactType` a manifest declares, where it is JSON and declares them. */
function manifestFields(bytes: Uint8Array): { mediaType?: string; artifactType?: string } {
  let body: unknown;
  try {
    body = decodeJson(bytes, 'manifest');
  } catch {
    // Not JSON: nothing declared here; decoding the manifest for use reports it.
    return {};
  }
  const { mediaType, artifactType } = (body ?? {}) as Record<string, unknown>;
  return {
    ...(typeof mediaType === 'string' ? { mediaType } : {}),
    ...(typeof artifactType === 'string' ? { artifactType } : {}),
  };
}
