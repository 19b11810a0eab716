import { pipeline, type Readable } from 'node:stream';
import {
  DigestMismatchError,
  DigestVerifier,
  parseDigest,
  SizeMismatchError,
  verifies,
} from '../digest/index.ts';
import { discardBody } from './body.ts';
import { checkStoredDigest } from './content-digest.ts';
import { type RepositoryContext, scopes } from './context.ts';
import { answerError, type RegistryError } from './errors.ts';
import { type HttpResponse, headerValue } from './http.ts';
import { withRetry } from './retry.ts';

/** An upload session the registry opened, ready to receive the blob. */
export interface UploadSession {
  /** Absolute session URL: the registry's `Location` resolved against the request, query kept as given. */
  readonly location: string;
  /** `OCI-Chunk-Min-Length`: the smallest chunk the registry accepts, when it says. */
  readonly chunkMinLength?: number;
}

/**
 * How a blob goes up: `monolithic` (POST, then one streamed PUT; the default), `single-request`
 * (one POST `?digest=` carrying the blob, falling back to a PUT when the registry opens a session
 * instead) or `chunked` (PATCH after PATCH, then a closing PUT).
 */
export type UploadMode = 'monolithic' | 'single-request' | 'chunked';

/** Options of {@link uploadBlob}. */
export interface UploadBlobOptions {
  signal?: AbortSignal;
  /** Default `monolithic`. */
  mode?: UploadMode;
  /** Chunk size of `chunked` mode, raised to the registry's minimum; default 5 MiB. Each chunk is buffered. */
  chunkSize?: number;
  /** A session already opened (a mount answered 202), used by the first attempt. */
  session?: UploadSession;
  /**
   * @deprecated Ignored: a body that verifies the digest itself says so on the stream
   * (`markVerified`, as every verifying stream of ociferry does), and only then are its bytes
   * not hashed a second time here.
   */
  sourceVerified?: boolean;
}

/** What the blob to upload is: its digest and exact size. */
export interface UploadDescriptor {
  digest: string;
  size: number;
  mediaType?: string;
}

/** Opens the blob's bytes; called once per attempt, and only once the registry is ready for them. */
export type BlobBody = () => Readable | Promise<Readable>;
/** @deprecated Use {@link BlobBody}: the bytes of an upload, not where blobs are read from. */
export type BlobSource = BlobBody;

const DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024;
/** 416 answers tolerated for one chunk before the upload starts over. */
const CHUNK_RESYNCS = 3;
const OCTET_STREAM = 'application/octet-stream';

/** The session URL as it stands now; chunked uploads move it with every PATCH. */
interface SessionState {
  location: string;
}

/**
 * Upload a blob. The body is opened lazily (after the session exists) and verified against the
 * digest and size while it streams; the registry's answer is checked too. A failed attempt cancels
 * its session with DELETE; attempts that failed for a retryable reason start over with a new
 * session and a newly opened body.
 */
export async function uploadBlob(
  context: RepositoryContext,
  descriptor: UploadDescriptor,
  body: BlobBody,
  options: UploadBlobOptions = {},
): Promise<void> {
  parseDigest(descriptor.digest);
  if (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0) {
    throw new RangeError(`blob size must be a non-negative integer, got ${descriptor.size}`);
  }
  await withRetry(
    context.retry,
    (attempt) =>
      uploadOnce(context, descriptor, body, options, attempt === 1 ? options.session : undefined),
    options.signal,
  );
}

/** Open an upload session (`POST /v2/<name>/blobs/uploads/`). */
async function startUpload(
  context: RepositoryContext,
  options: { signal?: AbortSignal } = {},
): Promise<UploadSession> {
  const response = await context.transport.request(context.registry, {
    method: 'POST',
    path: `/v2/${context.name}/blobs/uploads/`,
    scopes: scopes(context, 'pull', 'push'),
    repository: context.name,
    expect: [202],
    notFoundCode: 'NAME_UNKNOWN',
    signal: options.signal,
  });
  await discardBody(response);
  return sessionFrom(response);
}

/** The session a 202 answer opened: its `Location` resolved against the request URL, as given. */
export function sessionFrom(response: HttpResponse): UploadSession {
  const location = headerValue(response.headers, 'location');
  if (location === undefined || location === '') {
    const says = ` answered ${response.status} without a Location for the upload`;
    throw answerError(response, 'POST', 'BLOB_UPLOAD_INVALID', says);
  }
  const min = Number(headerValue(response.headers, 'oci-chunk-min-length'));
  const resolved = new URL(location, response.url).href;
  return Number.isSafeInteger(min) && min > 0
    ? { location: resolved, chunkMinLength: min }
    : { location: resolved };
}

async function uploadOnce(
  context: RepositoryContext,
  descriptor: UploadDescriptor,
  body: BlobBody,
  options: UploadBlobOptions,
  given: UploadSession | undefined,
): Promise<void> {
  const mode = options.mode ?? 'monolithic';
  let state: SessionState | undefined;
  try {
    let session = given;
    if (session === undefined && mode === 'single-request') {
      session = await postWhole(context, descriptor, body, options);
      if (session === undefined) return;
    }
    session ??= await startUpload(context, options);
    state = { location: session.location };
    if (mode === 'chunked') {
      const chunkSize = Math.max(
        options.chunkSize ?? DEFAULT_CHUNK_SIZE,
        session.chunkMinLength ?? 1,
      );
      await putChunks(context, state, descriptor, body, chunkSize, options);
    } else {
      await putWhole(context, state, descriptor, body, options);
    }
  } catch (err) {
    if (state !== undefined) await cancelUpload(context, state.location);
    throw err;
  }
}

/** The blob's bytes piped through a verifier; `verified` settles once the verifier has judged them. */
async function openVerified(
  descriptor: UploadDescriptor,
  body: BlobBody,
): Promise<{ stream: DigestVerifier; verified: Promise<void> }> {
  const bytes = await body();
  const stream = new DigestVerifier(descriptor.digest, {
    size: descriptor.size,
    source: 'the upload body',
    // A body that verifies this digest fails on a mismatch by itself: count its bytes only.
    hash: !verifies(bytes, descriptor.digest),
  });
  const verified = new Promise<void>((resolve, reject) => {
    pipeline(bytes, stream, (err) => (err ? reject(err) : resolve()));
  });
  verified.catch(() => undefined);
  return { stream, verified };
}

/**
 * Send the whole blob, verified while it streams, as the body of a PUT to the session or a POST
 * `?digest=`. When the request and the verification both fail, the verification's error wins (it
 * says why the bytes were refused). A 202 means the registry opened a session without taking the
 * bytes: the body is dropped and the answer returned for the caller to follow.
 */
async function sendWhole(
  context: RepositoryContext,
  descriptor: UploadDescriptor,
  body: BlobBody,
  target: { method: 'PUT'; url: URL } | { method: 'POST'; path: string },
  options: UploadBlobOptions,
): Promise<HttpResponse> {
  const { signal } = options;
  const opened = await openVerified(descriptor, body);
  let response: HttpResponse;
  try {
    response = await context.transport.request(context.registry, {
      ...target,
      headers: { 'content-type': OCTET_STREAM, 'content-length': String(descriptor.size) },
      body: opened.stream,
      scopes: scopes(context, 'pull', 'push'),
      repository: context.name,
      expect: target.method === 'POST' ? [201, 202] : [201, 204],
      notFoundCode: target.method === 'POST' ? 'NAME_UNKNOWN' : 'BLOB_UPLOAD_UNKNOWN',
      signal,
    });
  } catch (err) {
    opened.stream.destroy(err instanceof Error ? err : undefined);
    // Bytes refused by the verifier explain the failure better than the request's error; any
    // other stream error (the request tore the body down) is a consequence of `err`.
    await opened.verified.catch((verifyError: unknown) => {
      if (verifyError instanceof DigestMismatchError || verifyError instanceof SizeMismatchError) {
        throw verifyError;
      }
    });
    throw err;
  }
  if (response.status === 202) {
    opened.stream.destroy();
    await discardBody(response);
    return response;
  }
  await opened.verified.catch(async (err: unknown) => {
    // undici may tear the body down once the registry has answered, before the verifier's end:
    // every byte went out and the registry checked the digest it was given, so that is success.
    if (isPrematureClose(err) && opened.stream.bytes === descriptor.size) return;
    await discardBody(response);
    throw err;
  });
  await finished(response, descriptor.digest);
  return response;
}

/** PUT the whole blob to the session (monolithic upload, or the fallback of a single request). */
async function putWhole(
  context: RepositoryContext,
  state: SessionState,
  descriptor: UploadDescriptor,
  body: BlobBody,
  options: UploadBlobOptions,
): Promise<void> {
  const url = new URL(withDigest(state.location, descriptor.digest));
  await sendWhole(context, descriptor, body, { method: 'PUT', url }, options);
}

/** POST the whole blob with `?digest=`; undefined when stored, else the session the registry opened. */
async function postWhole(
  context: RepositoryContext,
  descriptor: UploadDescriptor,
  body: BlobBody,
  options: UploadBlobOptions,
): Promise<UploadSession | undefined> {
  const path = `/v2/${context.name}/blobs/uploads/?digest=${encodeURIComponent(descriptor.digest)}`;
  const response = await sendWhole(context, descriptor, body, { method: 'POST', path }, options);
  return response.status === 202 ? sessionFrom(response) : undefined;
}

/** Send the blob in PATCH chunks of `chunkSize` bytes, then close the session with a PUT. */
async function putChunks(
  context: RepositoryContext,
  state: SessionState,
  descriptor: UploadDescriptor,
  body: BlobBody,
  chunkSize: number,
  options: UploadBlobOptions,
): Promise<void> {
  const { signal } = options;
  const opened = await openVerified(descriptor, body);
  let offset = 0;
  try {
    for await (const chunk of fixedChunks(opened.stream, chunkSize)) {
      await patchChunk(context, state, chunk, offset, signal);
      offset += chunk.length;
    }
    await opened.verified;
  } finally {
    opened.stream.destroy();
  }
  const response = await context.transport.request(context.registry, {
    method: 'PUT',
    url: new URL(withDigest(state.location, descriptor.digest)),
    headers: { 'content-length': '0' },
    scopes: scopes(context, 'pull', 'push'),
    repository: context.name,
    expect: [201, 204],
    signal,
  });
  await finished(response, descriptor.digest);
}

/**
 * PATCH one chunk at `offset`. After a 416 the session's status says how much the registry holds,
 * and the rest of the chunk is sent from there; a registry that lost earlier chunks fails the
 * attempt (retryable, so the upload starts over).
 */
async function patchChunk(
  context: RepositoryContext,
  state: SessionState,
  chunk: Buffer,
  offset: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const end = offset + chunk.length;
  let sent = 0;
  for (let resyncs = 0; sent < chunk.length; resyncs++) {
    const part = chunk.subarray(sent);
    const response = await context.transport.request(context.registry, {
      method: 'PATCH',
      url: new URL(state.location),
      headers: {
        'content-type': OCTET_STREAM,
        'content-range': `${offset + sent}-${end - 1}`,
        'content-length': String(part.length),
      },
      body: part,
      scopes: scopes(context, 'pull', 'push'),
      repository: context.name,
      expect: [201, 202, 204, 416],
      notFoundCode: 'BLOB_UPLOAD_UNKNOWN',
      signal,
    });
    await discardBody(response);
    let held: number;
    if (response.status === 416) {
      if (resyncs >= CHUNK_RESYNCS) throw outOfSync(response, 'kept answering 416');
      held = await uploadStatus(context, state, signal);
    } else {
      moveSession(state, response);
      held = rangeEnd(headerValue(response.headers, 'range')) ?? end;
    }
    if (held < offset || held > end)
      throw outOfSync(response, `holds ${held} bytes where ${offset}-${end} were expected`);
    sent = held - offset;
  }
}

/** Ask the session how many bytes it holds (`GET <location>`, 204 + `Range`). */
async function uploadStatus(
  context: RepositoryContext,
  state: SessionState,
  signal: AbortSignal | undefined,
): Promise<number> {
  const response = await context.transport.request(context.registry, {
    method: 'GET',
    url: new URL(state.location),
    scopes: scopes(context, 'pull', 'push'),
    repository: context.name,
    expect: [200, 204],
    notFoundCode: 'BLOB_UPLOAD_UNKNOWN',
    signal,
  });
  await discardBody(response);
  moveSession(state, response);
  return rangeEnd(headerValue(response.headers, 'range')) ?? 0;
}

/**
 * Cancel an upload session with DELETE, best effort: either the upload has failed already and this
 * must not hide why, or the session is not needed (registries expire abandoned ones anyway).
 */
export async function cancelUpload(context: RepositoryContext, location: string): Promise<void> {
  try {
    const response = await context.transport.request(context.registry, {
      method: 'DELETE',
      url: new URL(location),
      scopes: scopes(context, 'pull', 'push'),
      repository: context.name,
      expect: [200, 202, 204, 404, 405],
    });
    await discardBody(response);
  } catch {
    // Registries expire abandoned sessions on their own.
  }
}

/** Check the closing answer of an upload: the stored digest must be ours. */
async function finished(response: HttpResponse, digest: string): Promise<void> {
  await discardBody(response);
  checkStoredDigest(response, digest);
}

/** Follow the session to the `Location` an answer gives, resolved against the request URL. */
function moveSession(state: SessionState, response: HttpResponse): void {
  const location = headerValue(response.headers, 'location');
  if (location) state.location = new URL(location, response.url).href;
}

/** Bytes held according to an upload `Range: 0-<last>` header (exclusive end), or undefined. */
function rangeEnd(range: string | undefined): number | undefined {
  const match = /^(?:bytes=)?0-(\d+)$/.exec(range?.trim() ?? '');
  if (!match) return undefined;
  const last = Number(match[1]);
  // distribution reports an empty session as 0-0 too; resending one byte too many is answered by a 416.
  return last === 0 ? 0 : last + 1;
}

function outOfSync(response: HttpResponse, what: string): RegistryError {
  const says = `: the upload session ${what}; starting over`;
  return answerError(response, 'PATCH', 'BLOB_UPLOAD_INVALID', says, { retryable: true });
}

/** `location` with `digest=` appended, leaving its own query exactly as the registry gave it. */
function withDigest(location: string, digest: string): string {
  const hash = location.indexOf('#');
  const base = hash < 0 ? location : location.slice(0, hash);
  return `${base}${base.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** Re-cut a stream into buffers of exactly `size` bytes (the last may be shorter). */
async function* fixedChunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const data of stream as AsyncIterable<Buffer>) {
    let chunk = data;
    while (length + chunk.length >= size) {
      const take = size - length;
      parts.push(chunk.subarray(0, take));
      yield Buffer.concat(parts, size);
      chunk = chunk.subarray(take);
      parts = [];
      length = 0;
    }
    if (chunk.length > 0) {
      parts.push(chunk);
      length += chunk.length;
    }
  }
  if (length > 0) yield Buffer.concat(parts, length);
}

function isPrematureClose(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}
