import type { CopyEvent } from '../../copy/index.ts';

/** True when an event's destination is an OCI layout (`oci:DIR`): its blobs are written, not uploaded. */
export function toLayout(event: { readonly target?: string }): boolean {
  return event.target?.startsWith('oci:') ?? false;
}

/** One blob being transferred. */
export interface BlobTransfer {
  readonly digest: string;
  readonly size: number;
  bytes: number;
}

/** How far back the transfer rate looks, in milliseconds. */
const RATE_WINDOW_MS = 5000;
/** Samples closer together than this replace each other. */
const SAMPLE_SPACING_MS = 100;

/**
 * Folds copy events into what a progress display shows: blobs in flight, counts of skipped,
 * mounted and uploaded blobs, bytes moved, and a rate over the last few seconds.
 */
export class TransferTracker {
  /** Blobs started and not done, in start order, keyed by destination and digest. */
  readonly inFlight = new Map<string, BlobTransfer>();
  skipped = 0;
  mounted = 0;
  uploaded = 0;
  /** Blobs written into OCI layouts (the `uploaded` of a layout destination). */
  written = 0;
  /** Which kinds of destination the events named so far. */
  readonly destinations = { layout: false, registry: false };
  manifests = 0;
  readonly startedAt: number;
  #finishedBytes = 0;
  #plannedBytes = 0;
  readonly #samples: Array<{ at: number; bytes: number }> = [];

  constructor(now: number) {
    this.startedAt = now;
  }

  /** Bytes moved so far: finished blobs plus the progress of those in flight. */
  get transferred(): number {
    let bytes = this.#finishedBytes;
    for (const blob of this.inFlight.values()) bytes += blob.bytes;
    return bytes;
  }

  /** Size of every blob that has started transferring (blobs not started yet are unknown). */
  get planned(): number {
    return this.#plannedBytes;
  }

  apply(event: CopyEvent, now: number): void {
    if (event.target !== undefined)
      this.destinations[toLayout(event) ? 'layout' : 'registry'] = true;
    switch (event.type) {
      case 'blob-skipped':
        this.skipped++;
        break;
      case 'blob-mounted':
        this.mounted++;
        break;
      case 'blob-start':
        this.#blob(event);
        break;
      case 'blob-progress':
        this.#blob(event).bytes = event.bytes;
        break;
      case 'blob-done':
        this.#blob(event);
        this.inFlight.delete(transferKey(event));
        this.#finishedBytes += event.size;
        if (toLayout(event)) this.written++;
        else this.uploaded++;
        break;
      case 'manifest-pushed':
        this.manifests++;
        break;
    }
    this.#sample(now);
  }

  /** Bytes per second over the last few seconds; 0 until there are two samples. */
  rate(now: number): number {
    this.#sample(now);
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.at - first.at < 200) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }

  /** Milliseconds left for the blobs known so far at the current rate; undefined without either. */
  eta(now: number): number | undefined {
    const rate = this.rate(now);
    const left = this.#plannedBytes - this.transferred;
    if (rate <= 0 || left <= 0) return undefined;
    return (left * 1000) / rate;
  }

  #blob(event: { digest: string; size: number; target?: string }): BlobTransfer {
    const key = transferKey(event);
    let blob = this.inFlight.get(key);
    if (!blob) {
      blob = { digest: event.digest, size: event.size, bytes: 0 };
      this.inFlight.set(key, blob);
      this.#plannedBytes += event.size;
    }
    return blob;
  }

  /** Record the byte count at `now`, keeping samples about {@link SAMPLE_SPACING_MS} apart. */
  #sample(now: number): void {
    const sample = { at: now, bytes: this.transferred };
    const count = this.#samples.length;
    const beforeLast = this.#samples[count - 2];
    if (beforeLast && now - beforeLast.at < SAMPLE_SPACING_MS) this.#samples[count - 1] = sample;
    else this.#samples.push(sample);
    while (this.#samples.length > 2 && (this.#samples[0]?.at ?? now) < now - RATE_WINDOW_MS) {
      this.#samples.shift();
    }
  }
}

/** One transfer per destination and blob: copies to several destinations move a blob to each. */
function transferKey(event: { digest: string; target?: string }): string {
  return `${event.target ?? ''}\0${event.digest}`;
}
