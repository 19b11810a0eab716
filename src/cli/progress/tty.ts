import type { CopyEvent } from '../../copy/index.ts';
import { formatBytes, formatDuration, shortDigest } from '../format.ts';
import type { Progress, ProgressStream } from './progress.ts';
import { type BlobTransfer, TransferTracker } from './tracker.ts';

const ESC = '\x1b[';
const HIDE_CURSOR = `${ESC}?25l`;
const SHOW_CURSOR = `${ESC}?25h`;
const CLEAR_LINE = `${ESC}2K`;
const CLEAR_BELOW = `${ESC}J`;
const BAR_WIDTH = 24;

/** Options of {@link TtyProgress}. */
export interface TtyProgressOptions {
  /** Shortest time between two redraws, in milliseconds; default 100 (10 frames a second). */
  intervalMs?: number;
  /** Most bars shown at once; default 10, then one line counts the others. */
  maxBars?: number;
  /** Clock, for tests; default `Date.now`. */
  now?: () => number;
}

/**
 * Progress bars on a terminal: one bar per blob in flight and a total line (bytes, rate, ETA,
 * counts of uploaded, mounted and skipped blobs), redrawn in place by moving the cursor up and
 * clearing lines, at most `intervalMs` apart and in one write per frame. The cursor is hidden
 * while bars are shown and restored by {@link stop} or when the process exits.
 */
export class TtyProgress implements Progress {
  readonly #stream: ProgressStream;
  readonly #intervalMs: number;
  readonly #maxBars: number;
  readonly #now: () => number;
  readonly #tracker: TransferTracker;
  /** Lines of the frame on screen, which the next frame overwrites. */
  #lines = 0;
  #lastDraw = 0;
  #timer: NodeJS.Timeout | undefined;
  #cursorHidden = false;
  readonly #restoreOnExit = () => this.#stream.write(SHOW_CURSOR);

  constructor(stream: ProgressStream, options: TtyProgressOptions = {}) {
    this.#stream = stream;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#maxBars = options.maxBars ?? 10;
    this.#now = options.now ?? Date.now;
    this.#tracker = new TransferTracker(this.#now());
  }

  readonly onEvent = (event: CopyEvent): void => {
    this.#tracker.apply(event, this.#now());
    if (this.#now() - this.#lastDraw >= this.#intervalMs) this.#draw();
    else this.#timer ??= setTimeout(() => this.#draw(), this.#intervalMs).unref();
  };

  /** The line goes where the bars were, and the bars are drawn again below it. */
  note(line: string): void {
    const drawn = this.#lines > 0;
    this.#erase();
    this.#stream.write(`${line}\n`);
    if (drawn) this.#draw();
  }

  /** Erase the bars and give the cursor back. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#erase();
    if (this.#cursorHidden) {
      this.#stream.write(SHOW_CURSOR);
      process.removeListener('exit', this.#restoreOnExit);
      this.#cursorHidden = false;
    }
  }

  #erase(): void {
    if (this.#lines > 0) this.#stream.write(`${ESC}${this.#lines}A\r${CLEAR_BELOW}`);
    this.#lines = 0;
  }

  #draw(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = this.#now();
    this.#lastDraw = now;
    const lines = this.#frame(now);
    // A pseudo-terminal without a size reports 0 columns: draw for 80 then.
    const width = Math.max(20, (this.#stream.columns || 80) - 1);
    let out = '';
    if (!this.#cursorHidden) {
      out += HIDE_CURSOR;
      process.once('exit', this.#restoreOnExit);
      this.#cursorHidden = true;
    }
    if (this.#lines > 0) out += `${ESC}${this.#lines}A\r`;
    for (const line of lines) out += `${CLEAR_LINE}${truncate(line, width)}\n`;
    out += CLEAR_BELOW;
    this.#stream.write(out);
    this.#lines = lines.length;
  }

  #frame(now: number): string[] {
    const tracker = this.#tracker;
    const blobs = [...tracker.inFlight.values()];
    const lines = blobs.slice(0, this.#maxBars).map(barLine);
    if (blobs.length > this.#maxBars) {
      lines.push(`  … and ${blobs.length - this.#maxBars} more in flight`);
    }
    const rate = tracker.rate(now);
    const eta = tracker.eta(now);
    const counts = [
      // A layout destination has its blobs written; uploaded stays shown for registries.
      ...(tracker.destinations.registry || !tracker.destinations.layout
        ? [`${tracker.uploaded} uploaded`]
        : []),
      ...(tracker.destinations.layout ? [`${tracker.written} written`] : []),
      `${tracker.mounted} mounted`,
      `${tracker.skipped} skipped`,
    ];
    const speed = rate > 0 ? `  ${formatBytes(rate)}/s` : '';
    const left = eta === undefined ? '' : `  ETA ${formatDuration(Math.max(1000, eta))}`;
    lines.push(
      `total ${formatBytes(tracker.transferred)} / ${formatBytes(tracker.planned)}${speed}${left}  (${counts.join(', ')})`,
    );
    return lines;
  }
}

function barLine(blob: BlobTransfer): string {
  const fraction = blob.size > 0 ? Math.min(1, blob.bytes / blob.size) : 0;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar =
    filled >= BAR_WIDTH
      ? '='.repeat(BAR_WIDTH)
      : `${'='.repeat(filled)}>${' '.repeat(BAR_WIDTH - filled - 1)}`;
  return `${shortDigest(blob.digest)} [${bar}] ${formatBytes(blob.bytes)} / ${formatBytes(blob.size)}`;
}

function truncate(line: string, width: number): string {
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}
