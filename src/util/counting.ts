import { Transform } from 'node:stream';

/** A pass-through stage that reports the size of each chunk to `count` (progress, statistics). */
export function countingStage(count: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      count(chunk.length);
      callback(null, chunk);
    },
  });
}
