import type { Readable } from 'node:stream';
import { SizeExceededError } from '../errors.ts';
import { decodeJson } from '../oci/index.ts';

/**
 * Read a small JSON document from a stream whose announced size is `size`, refusing anything
 * over `limit` before reading and while reading; bad JSON is `JSON_INVALID` (see `decodeJson`).
 */
export async function readJson(
  open: () => Promise<Readable>,
  size: number,
  limit: number,
  what: string,
): Promise<unknown> {
  if (size > limit) throw new SizeExceededError({ what, size, limit });
  const stream = await open();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      stream.destroy();
      throw new SizeExceededError({ what, size: total, limit });
    }
    chunks.push(chunk);
  }
  return decodeJson(Buffer.concat(chunks, total), what);
}
