import type { Readable } from 'node:stream';
import { OciferryError, SizeExceededError } from '../errors.ts';

/** A JSON blob could not be parsed. */
export class JsonInvalidError extends OciferryError {
  constructor(what: string, reason: string) {
    super('JSON_INVALID', `${what} is not valid JSON: ${reason}`);
  }
}

/**
 * Read a small JSON document from a stream whose announced size is `size`, refusing anything
 * over `limit` before reading and while reading.
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
  try {
    return JSON.parse(Buffer.concat(chunks, total).toString('utf8'));
  } catch (error) {
    throw new JsonInvalidError(what, (error as Error).message);
  }
}
