import { PassThrough, type Readable } from 'node:stream';

/** Options of {@link Tee}. */
export interface TeeOptions {
  /**
   * How long a branch nobody has claimed yet may hold the others back before it is cut loose
   * (its consumer then reads on its own); default 5000 ms. It bounds the wait for a consumer
   * that cannot start (no free request slot on its host) while the others wait for it.
   */
  claimGraceMs?: number;
}

const DEFAULT_CLAIM_GRACE_MS = 5000;

/**
 * One read fanned out to several consumers: every branch sees every byte of the source, which
 * is opened on the first claim and read at the pace of the slowest claimed branch (each branch
 * buffers at most its high-water mark, so memory stays flat whatever the size). A branch that is
 * released or destroyed stops holding the others back; a source error destroys every branch
 * with that error, so no consumer ever sees a clean end of bad bytes.
 */
export class Tee {
  readonly #open: () => Promise<Readable>;
  readonly #graceMs: number;
  readonly #branches: readonly PassThrough[];
  readonly #claimed = new Set<number>();
  #started = false;
  #failure: { error: Error } | undefined;

  constructor(open: () => Promise<Readable>, count: number, options: TeeOptions = {}) {
    this.#open = open;
    this.#graceMs = options.claimGraceMs ?? DEFAULT_CLAIM_GRACE_MS;
    this.#branches = Array.from({ length: count }, () => {
      const branch = new PassThrough();
      // A consumer sees the error through its own pipeline; an unclaimed branch must not crash.
      branch.on('error', () => undefined);
      return branch;
    });
  }

  /** Indexes of the branches claimed so far (each took the shared read). */
  get claimed(): ReadonlySet<number> {
    return this.#claimed;
  }

  /**
   * Branch `index` for its consumer, opening the source on the first claim. Undefined when the
   * branch was released or cut loose: the consumer must read on its own. Throws the source's
   * error once the shared read has failed.
   */
  claim(index: number): Readable | undefined {
    if (this.#failure) throw this.#failure.error;
    const branch = this.#branches[index];
    if (!branch || branch.destroyed) return undefined;
    this.#claimed.add(index);
    if (!this.#started) {
      this.#started = true;
      void this.#pump();
    }
    return branch;
  }

  /** Stop feeding branch `index`: its consumer is done with it, or never needed it. */
  release(index: number): void {
    const branch = this.#branches[index];
    if (branch && !branch.destroyed) branch.destroy();
  }

  async #pump(): Promise<void> {
    try {
      const source = await this.#open();
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          if (!this.#branches.some(isLive)) break;
          await this.#write(chunk);
        }
      } finally {
        source.destroy();
      }
      for (const branch of this.#branches) if (isLive(branch)) branch.end();
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      this.#failure = { error: failure };
      for (const branch of this.#branches) if (isLive(branch)) branch.destroy(failure);
    }
  }

  /** Write `chunk` to every live branch; resolves once each full one drained or went away. */
  async #write(chunk: Buffer): Promise<void> {
    const waits: Promise<void>[] = [];
    this.#branches.forEach((branch, index) => {
      if (isLive(branch) && !branch.write(chunk)) waits.push(this.#drained(branch, index));
    });
    await Promise.all(waits);
  }

  #drained(branch: PassThrough, index: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#claimed.has(index)
        ? undefined
        : setTimeout(() => {
            if (!this.#claimed.has(index)) this.release(index);
          }, this.#graceMs);
      const done = () => {
        clearTimeout(timer);
        branch.off('drain', done);
        branch.off('close', done);
        resolve();
      };
      branch.on('drain', done);
      branch.on('close', done);
      if (branch.destroyed) done();
    });
  }
}

function isLive(branch: PassThrough): boolean {
  return !branch.destroyed && !branch.writableEnded;
}
