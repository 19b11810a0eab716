import type { CopyEvent } from '../../copy/index.ts';
import { formatBytes, shortDigest } from '../format.ts';
import type { Progress, ProgressStream } from './progress.ts';
import { toLayout } from './tracker.ts';

/** One line per finished step, for logs and pipes: `mounted sha256:… from repo`. */
export class PlainProgress implements Progress {
  readonly #stream: ProgressStream;

  constructor(stream: ProgressStream) {
    this.#stream = stream;
  }

  readonly onEvent = (event: CopyEvent): void => {
    const line = describe(event);
    if (line !== undefined) this.#stream.write(`${line}\n`);
  };

  note(line: string): void {
    this.#stream.write(`${line}\n`);
  }

  stop(): void {}
}

function describe(event: CopyEvent): string | undefined {
  switch (event.type) {
    case 'blob-skipped':
      return `skipped ${shortDigest(event.digest)} ${formatBytes(event.size)} (already there)`;
    case 'blob-mounted':
      return `mounted ${shortDigest(event.digest)} ${formatBytes(event.size)} from ${event.from}`;
    case 'blob-done':
      return `${toLayout(event) ? 'written' : 'uploaded'} ${shortDigest(event.digest)} ${formatBytes(event.size)}`;
    case 'manifest-pushed': {
      const { digest, mediaType } = event.descriptor;
      const tag = event.tag === undefined ? '' : ` as ${event.tag}`;
      const verb = toLayout(event) ? 'wrote' : 'pushed';
      return `${verb} manifest ${shortDigest(digest)}${tag} (${mediaType})`;
    }
    default:
      return undefined;
  }
}
