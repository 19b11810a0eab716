import type { Readable, Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { ExtractError } from './extract-error.ts';
import { isTarHeader } from './tar.ts';

/** How a layer blob is compressed. */
export type Compression = 'gzip' | 'zstd' | 'none';

/** First Node.js release whose zlib decompresses zstd (`zlib.createZstdDecompress`). */
const ZSTD_NODE = '22.15.0';

/** Bytes {@link chooseCompression} wants to see: one tar header block. */
export const SNIFF_BYTES = 512;

/**
 * The compression a layer media type declares: OCI `…tar+gzip`/`+zstd`/`…tar`, Docker
 * `…tar.gzip`/`…tar`, their non-distributable and foreign variants. Undefined when the type does
 * not say (`application/octet-stream`, artifact types).
 */
function declaredCompression(mediaType: string): Compression | undefined {
  const type = (mediaType.split(';', 1)[0] ?? '').trim().toLowerCase();
  if (/[+.](gzip|gz)$/.test(type)) return 'gzip';
  if (/[+.](zstd|zst)$/.test(type)) return 'zstd';
  if (/(^|[+./-])tar$/.test(type)) return 'none';
  return undefined;
}

/** What the first bytes of a blob say about it; bzip2 and xz are recognised only to be refused. */
function sniffCompression(head: Uint8Array): Compression | 'bzip2' | 'xz' | undefined {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'gzip';
  // A zstd frame, or a skippable frame (magic 0x184D2A50..5F) in front of one.
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (((head[0] ?? 0) & 0xf0) === 0x50 && starts(head[0] ?? 0, 0x2a, 0x4d, 0x18)) return 'zstd';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (isTarHeader(head)) return 'none';
  return undefined;
}

/**
 * Decide how to decompress a layer from its media type and its first bytes
 * ({@link SNIFF_BYTES} of them, fewer only if the blob is that short). The media type decides,
 * except where the bytes are unambiguous: a gzip or zstd magic number, or a valid tar header,
 * wins over a mislabelled type. Types that say nothing fall back to the bytes, then to plain tar.
 * Fails with `COMPRESSION_UNSUPPORTED` for bzip2 and xz.
 */
export function chooseCompression(mediaType: string, head: Uint8Array): Compression {
  const declared = declaredCompression(mediaType);
  const sniffed = sniffCompression(head);
  if (sniffed !== 'bzip2' && sniffed !== 'xz') return sniffed ?? declared ?? 'none';
  if (declared !== undefined) return declared;
  throw new ExtractError(
    'COMPRESSION_UNSUPPORTED',
    `${mediaType} blob is ${sniffed}-compressed; only gzip, zstd and plain tar layers are supported`,
  );
}

/**
 * The transform that decompresses `compression`, or undefined for plain tar. Fails with
 * `COMPRESSION_UNSUPPORTED` for zstd on a Node.js without it.
 */
export function createDecompressor(compression: Compression): Transform | undefined {
  if (compression === 'gzip') return zlib.createGunzip();
  if (compression === 'none') return undefined;
  const create = zstdDecompressor();
  if (create === undefined) {
    throw new ExtractError(
      'COMPRESSION_UNSUPPORTED',
      `zstd-compressed layers need Node.js ${ZSTD_NODE} or newer (zlib.createZstdDecompress); ` +
        `this is Node.js ${process.versions.node}`,
    );
  }
  return create();
}

/** zlib's zstd decompressor where the runtime has one (Node.js >= 22.15), else undefined. */
export function zstdDecompressor(): (() => Transform) | undefined {
  return (zlib as { createZstdDecompress?: () => Transform }).createZstdDecompress;
}

/**
 * The first `size` bytes of `stream` (fewer if it is shorter) and every byte of it, those
 * included, as one iterable. Returning the iterable early destroys `stream`.
 */
export async function peek(
  stream: Readable,
  size: number,
): Promise<{ head: Buffer; chunks: AsyncIterable<Buffer> }> {
  const iterator: AsyncIterator<Buffer> = stream[Symbol.asyncIterator]();
  const first: Buffer[] = [];
  let have = 0;
  while (have < size) {
    const next = await iterator.next();
    if (next.done) break;
    first.push(next.value);
    have += next.value.length;
  }
  async function* chunks(): AsyncGenerator<Buffer, void, undefined> {
    try {
      yield* first;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        yield next.value;
      }
    } finally {
      await iterator.return?.();
    }
  }
  return { head: Buffer.concat(first).subarray(0, size), chunks: chunks() };
}
