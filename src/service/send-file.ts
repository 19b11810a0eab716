import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/** Bytes read and written at a time by {@link sendFile}. */
export const SEND_CHUNK = 1024 * 1024;

/**
 * Write bytes `start` to `end` (inclusive) of the open file `file` to `out` (a response whose
 * headers are written), and end it. Two buffers are used in turn: one is read into while the
 * other is being written, and a buffer is read into again only once `out` has flushed it. A file
 * stream allocates a new buffer per chunk instead, and those buffers, dying young but held outside
 * the heap, make V8 run a full garbage collection every few dozen megabytes: reusing two doubles
 * the rate one thread serves a large blob at. Rejects when the file is shorter than `end`, or
 * when `out` is closed first (the client went away); `out` is not destroyed here.
 */
export async function sendFile(
  file: FileHandle,
  out: Writable,
  start: number,
  end: number,
  chunkSize = SEND_CHUNK,
): Promise<void> {
  const size = Math.min(chunkSize, end - start + 1);
  const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  // Resolved with the write's error, if any, once `out` has flushed the buffer of that turn.
  const flushed: Promise<Error | null | undefined>[] = [
    Promise.resolve(undefined),
    Promise.resolve(undefined),
  ];
  let onClose: () => void = () => {};
  const closed = new Promise<Error>((resolve) => {
    onClose = () => resolve(new Error('the connection closed before the blob was sent'));
    out.once('close', onClose);
  });
  try {
    let position = start;
    for (let turn = 0; position <= end; turn ^= 1) {
      const error = await Promise.race([flushed[turn], closed]);
      if (error) throw error;
      const buffer = buffers[turn] as Buffer;
      const wanted = Math.min(buffer.length, end - position + 1);
      const { bytesRead } = await file.read(buffer, 0, wanted, position);
      if (bytesRead === 0) {
        throw new Error(`the blob's file ends at byte ${position}, before byte ${end}`);
      }
      position += bytesRead;
      flushed[turn] = new Promise((resolve) => {
        out.write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead), resolve);
      });
    }
    for (const turn of flushed) {
      const error = await Promise.race([turn, closed]);
      if (error) throw error;
    }
    out.end();
  } finally {
    out.off('close', onClose);
  }
}
