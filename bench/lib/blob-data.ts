import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';

/** A generated layer blob on disk: a valid gzip file whose payload is seeded random bytes. */
export interface BlobFile {
  /** Path of the blob file (the gzip bytes, as pushed). */
  readonly path: string;
  /** `sha256:` digest of the gzip bytes. */
  readonly digest: string;
  /** Exact size of the gzip bytes. */
  readonly size: number;
  /** `sha256:` digest of the uncompressed payload (the layer's diffID). */
  readonly diffId: string;
}

/** Where generated blobs are kept between runs (deterministic, so safe to reuse). */
export const DATA_DIR = join(tmpdir(), 'ociferry-bench-data');
/** Bumped whenever the generator's output changes, so stale files are never reused. */
const FORMAT = 'v1';
/** Largest payload of one deflate stored block. */
const STORED_MAX = 65_535;
/** gzip header (10) + trailer (8). */
const GZIP_OVERHEAD = 18;
/** Per stored block: BFINAL/BTYPE byte + LEN + NLEN. */
const BLOCK_OVERHEAD = 5;
const CHUNK = 64 * STORED_MAX;

/**
 * Payload length whose stored-gzip encoding is exactly `size` bytes (so a "64 MiB layer" is
 * 64 MiB on the wire). Some sizes have no exact encoding; those are refused.
 */
function payloadLength(size: number): number {
  const blocks = Math.max(1, Math.ceil((size - GZIP_OVERHEAD) / (STORED_MAX + BLOCK_OVERHEAD)));
  const payload = size - GZIP_OVERHEAD - blocks * BLOCK_OVERHEAD;
  if (payload < 0 || Math.max(1, Math.ceil(payload / STORED_MAX)) !== blocks) {
    throw new RangeError(`no stored-gzip encoding is exactly ${size} bytes`);
  }
  return payload;
}

/**
 * Incompressible, deterministic bytes: the AES-256-CTR keystream of a key derived from `seed`.
 * A seeded CSPRNG, fast (AES-NI) and identical on every machine.
 */
function* keystream(seed: string, length: number): Generator<Buffer> {
  const key = createHash('sha256').update(`ociferry-bench:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let left = length; left > 0; left -= CHUNK) {
    yield cipher.update(zeros.subarray(0, Math.min(CHUNK, left)));
  }
}

/**
 * A gzip stream of `payload` bytes of keystream made only of stored (uncompressed) deflate blocks,
 * written by hand so the output is byte-identical everywhere. Gzip so that no tool under test
 * decides to compress it (skopeo compresses uncompressed layers for `oci:` and `docker://`);
 * random so that nothing downstream can shrink it.
 */
function* storedGzip(seed: string, payload: number, onPayload: (chunk: Buffer) => void) {
  yield Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]);
  let crc = 0;
  let left = payload;
  for (const chunk of keystream(seed, payload)) {
    onPayload(chunk);
    crc = crc32(chunk, crc);
    const parts: Buffer[] = [];
    for (let at = 0; at < chunk.length; at += STORED_MAX) {
      const data = chunk.subarray(at, at + STORED_MAX);
      left -= data.length;
      const header = Buffer.alloc(BLOCK_OVERHEAD);
      header[0] = left === 0 ? 1 : 0;
      header.writeUInt16LE(data.length, 1);
      header.writeUInt16LE(~data.length & 0xffff, 3);
      parts.push(header, data);
    }
    yield Buffer.concat(parts);
  }
  if (payload === 0) yield Buffer.from([1, 0, 0, 0xff, 0xff]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(payload % 2 ** 32, 4);
  yield trailer;
}

/**
 * The blob for (`seed`, `size`), generated into {@link DATA_DIR} on first use and reused after:
 * exactly `size` bytes of valid gzip over incompressible seeded data.
 */
export async function blobFile(seed: string, size: number): Promise<BlobFile> {
  const name = `${FORMAT}-${seed}-${size}`;
  const path = join(DATA_DIR, `${name}.gz`);
  const metaPath = join(DATA_DIR, `${name}.json`);
  try {
    return { path, ...JSON.parse(await readFile(metaPath, 'utf8')) } as BlobFile;
  } catch {
    // Not generated yet.
  }
  await mkdir(DATA_DIR, { recursive: true });
  const payload = payloadLength(size);
  const blobHash = createHash('sha256');
  const diffHash = createHash('sha256');
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await pipeline(
      Readable.from(storedGzip(seed, payload, (chunk) => diffHash.update(chunk))),
      async function* hash(chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          blobHash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(tmp),
    );
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  const meta = {
    digest: `sha256:${blobHash.digest('hex')}`,
    size,
    diffId: `sha256:${diffHash.digest('hex')}`,
  };
  await writeFile(metaPath, JSON.stringify(meta));
  return { path, ...meta };
}
