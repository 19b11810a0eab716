import type { AbortWatch } from './abort-watch.ts';

/**
 * A signal of its own for one operation, aborted with `parent`'s reason through `watch` (one
 * listener on `parent` for all of the watch's operations): what Node APIs attach to the child
 * (`pipeline`, `addAbortSignal`) stays off the shared parent, which a copy of hundreds of blobs
 * would otherwise load past the listener-leak warning. Call `dispose` when the operation is over.
 */
export function childSignal(
  watch: AbortWatch,
  parent: AbortSignal,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, dispose: () => {} };
  }
  const dispose = watch.add(parent, () => controller.abort(parent.reason));
  return { signal: controller.signal, dispose };
}
