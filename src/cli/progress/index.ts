import { PlainProgress } from './plain.ts';
import type { Progress, ProgressStream } from './progress.ts';
import { TtyProgress } from './tty.ts';

export type { Progress, ProgressStream } from './progress.ts';

/** Values of `--progress`. */
export const PROGRESS_MODES = ['auto', 'tty', 'plain', 'none'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/**
 * The display for `mode` on `stream`: `auto` draws bars on a terminal and prints lines
 * otherwise; `none` (and `-q`/`--json`, which the caller maps to `none`) shows nothing.
 */
export function createProgress(
  mode: ProgressMode,
  stream: ProgressStream & { readonly isTTY?: boolean },
): Progress | undefined {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'tty' : 'plain') : mode;
  switch (resolved) {
    case 'tty':
      return new TtyProgress(stream);
    case 'plain':
      return new PlainProgress(stream);
    default:
      return undefined;
  }
}
