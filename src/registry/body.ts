import { answerError, networkError } from './errors.ts';
import { type HttpResponse, headerValue } from './http.ts';
import { redactUrl } from './redact.ts';

/**
 * Read a response body of at most `limit` bytes into memory: refused at once when
 * `Content-Length` says more, and cut off with `SIZE_EXCEEDED` as soon as the bytes read pass the
 * limit, so an oversized body is never buffered whole.
 */
export async function readBody(
  response: HttpResponse,
  method: string,
  limit: number,
  what = 'response body',
): Promise<Buffer> {
  const over = (size: string) => `: ${what} is ${size} bytes, over the limit of ${limit}`;
  const tooBig = (size: string) =>
    answerError(response, method, 'SIZE_EXCEEDED', over(size), { retryable: false });
  const declared = Number(headerValue(response.headers, 'content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    abandonBody(response);
    throw tooBig(String(declared));
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) {
        abandonBody(response);
        throw tooBig(`more than ${limit}`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    throw networkError(err, method, redactUrl(response.url)) ?? err;
  }
  return Buffer.concat(chunks, total);
}

/** Discard a response body, keeping the connection reusable when it is small. */
export async function discardBody(response: HttpResponse): Promise<void> {
  await response.body.dump().catch(() => undefined);
}

/** Stop reading a response body and close its connection (for bodies too big or not wanted at all). */
export function abandonBody(response: HttpResponse): void {
  response.body.on('error', () => undefined);
  response.body.destroy();
}
