import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DigestMismatchError, parseDigest, verifiedStream } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { abandonBody, discardBody } from './body.ts';
import { contradicts } from './content-digest.ts';
import { type RepositoryContext, scopes } from './context.ts';
import { answerError, networkError, RegistryError } from './errors.ts';
import { type HttpResponse, headerValue } from './http.ts';
import { redactUrl } from './redact.ts';
import { retryDelay, withRetry } from './retry.ts';

/** Options of {@link fetchBlob}. */
export interface FetchBlobOptions {
  signal?: AbortSignal;
  /** Read only bytes `start` to `end` (inclusive; default: to the end). Partial reads cannot be verified. */
  range?: { start: number; end?: number };
}

/** Media type reported for a blob whose registry names none. */
const OCTET_STREAM = 'application/octet-stream';

function blobPath(context: RepositoryContext, digest: string): string {
  return `/v2/${context.name}/blobs/${digest}`;
}

/** HEAD a blob: its size (and the registry's `Content-Type`), or undefined when it is absent. */
export async function headBlob(
  context: RepositoryContext,
  digest: string,
  options: { signal?: AbortSignal } = {},
): Promise<Descriptor | undefined> {
  parseDigest(digest);
  const response = await withRetry(
    context.retry,
    async () => {
      const answer = await context.transport.request(context.registry, {
        method: 'HEAD',
        path: blobPath(context, digest),
        scopes: scopes(context, 'pull'),
        repository: context.name,
        expect: [200, 404],
        signal: options.signal,
      });
      await discardBody(answer);
      return answer;
    },
    options.signal,
  );
  if (response.status === 404) return undefined;
  const announced = headerValue(response.headers, 'docker-content-digest');
  if (contradicts(announced, digest)) {
    throw new DigestMismatchError({
      expected: digest,
      actual: announced,
      source: redactUrl(response.url),
    });
  }
  const size = Number(headerValue(response.headers, 'content-length'));
  if (!Number.isSafeInteger(size) || size < 0) {
    const says = ` gave no usable Content-Length for ${digest}`;
    throw answerError(response, 'HEAD', 'SIZE_INVALID', says);
  }
  const mediaType =
    headerValue(response.headers, 'content-type')?.split(';')[0]?.trim() || OCTET_STREAM;
  return { mediaType, digest, size };
}

/**
 * Open a blob for reading. A whole-blob read is verified while it streams (digest, and size when
 * given): the stream fails with `DigestMismatchError`/`SizeMismatchError` before it ends, so only a
 * stream that ended cleanly delivered good bytes. A connection lost mid-body is resumed with
 * `Range` from the byte reached, up to the retry policy's attempts. Rejects before any byte when
 * the registry refuses the request (`BLOB_UNKNOWN`, `UNAUTHORIZED`, ...).
 */
export async function fetchBlob(
  context: RepositoryContext,
  descriptor: { digest: string; size?: number },
  options: FetchBlobOptions = {},
): Promise<Readable> {
  const { digest, size } = descriptor;
  parseDigest(digest);
  const range = options.range;
  const start = range?.start ?? 0;
  const end = range?.end ?? (size === undefined ? undefined : size - 1);
  const open = (from: number, queue: boolean) =>
    openRange(context, digest, from, range === undefined ? undefined : end, queue, options.signal);
  const first = await withRetry(context.retry, () => open(start, true), options.signal);
  const length = end === undefined ? undefined : end - start + 1;
  const source = Readable.from(resumingBody(context, first, start, length, open, options.signal), {
    objectMode: false,
  });
  if (range !== undefined) return source;
  return verifiedStream(source, digest, { size, source: redactUrl(first.response.url) });
}

/** An open blob response and how many leading bytes of it to drop (a server that ignored `Range`). */
interface OpenedRange {
  response: HttpResponse;
  skip: number;
}

/** GET the blob from byte `from` (to `end` inclusive when given), accepting 206 or a full 200. */
async function openRange(
  context: RepositoryContext,
  digest: string,
  from: number,
  end: number | undefined,
  queue: boolean,
  signal: AbortSignal | undefined,
): Promise<OpenedRange> {
  const headers: Record<string, string> = {};
  if (from > 0 || end !== undefined) headers.range = `bytes=${from}-${end ?? ''}`;
  const response = await context.transport.request(context.registry, {
    method: 'GET',
    path: blobPath(context, digest),
    headers,
    scopes: scopes(context, 'pull'),
    repository: context.name,
    expect: headers.range === undefined ? [200] : [200, 206],
    notFoundCode: 'BLOB_UNKNOWN',
    signal,
    queue,
  });
  if (response.status === 200) return { response, skip: from };
  const contentRange = headerValue(response.headers, 'content-range');
  const served = Number(/^bytes (\d+)-/.exec(contentRange ?? '')?.[1]);
  if (served !== from) {
    abandonBody(response);
    const says = ` answered Range bytes=${from}- with Content-Range ${contentRange ?? '(none)'}`;
    throw answerError(response, 'GET', 'RANGE_NOT_SATISFIABLE', says);
  }
  return { response, skip: 0 };
}

/**
 * The bytes of a blob (from `start`, `length` of them when known), continuing after a lost
 * connection or a body that ended short with a `Range` request from the byte reached.
 */
async function* resumingBody(
  context: RepositoryContext,
  first: OpenedRange,
  start: number,
  length: number | undefined,
  open: (from: number, queue: boolean) => Promise<OpenedRange>,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  let current: OpenedRange | undefined = first;
  let received = 0;
  let failures = 0;
  for (;;) {
    const before = received;
    try {
      current ??= await open(start + received, false);
      let { skip } = current;
      for await (const raw of current.response.body as AsyncIterable<Buffer>) {
        let chunk = raw;
        if (skip > 0) {
          const dropped = Math.min(skip, chunk.length);
          skip -= dropped;
          chunk = chunk.subarray(dropped);
        }
        if (length !== undefined && received + chunk.length > length)
          chunk = chunk.subarray(0, length - received);
        if (chunk.length === 0) continue;
        received += chunk.length;
        yield chunk;
        if (length !== undefined && received === length) return;
      }
      if (length === undefined || received >= length) return;
      const url = redactUrl(current.response.url);
      throw new RegistryError({
        code: 'CONNECTION_FAILED',
        method: 'GET',
        url,
        message: `GET ${url} ended after ${received} of ${length} bytes`,
      });
    } catch (err) {
      const url = current === undefined ? '' : redactUrl(current.response.url);
      const failure = networkError(err, 'GET', url) ?? err;
      current = undefined;
      failures = received > before ? 1 : failures + 1;
      const delay = retryDelay(failure, failures, context.retry);
      if (signal?.aborted || delay === undefined) throw failure;
      await sleep(delay, undefined, { signal });
    }
  }
}
