import type { CopyEvent } from '../../copy/index.ts';

/** Where progress goes: stderr, or a terminal-like stream in tests. */
export interface ProgressStream {
  write(text: string): boolean;
  /** Terminal width, when the stream is a terminal. */
  readonly columns?: number;
}

/** A progress display fed with copy events. */
export interface Progress {
  /** Show one event; pass as a copy's `onEvent`. */
  readonly onEvent: (event: CopyEvent) => void;
  /** Print a message line (a warning) without breaking the display: above bars, between lines. */
  note(line: string): void;
  /** Finish: leave the terminal as it was (cursor shown, no half-drawn frame). */
  stop(): void;
}
