/**
 * The two checks every piece of work shared between concurrent callers must pass, seen from the
 * server's side through a fault-proxy {@link Hold} on the one request the work sends: a caller
 * that aborts leaves the others their result, and when every caller has aborted the work stops
 * and its connection is closed.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import type { Hold } from './fault-proxy.ts';

/** Calls the shared operation once, as one caller with its own signal. */
export type SharedCall<T> = (signal: AbortSignal) => Promise<T>;

/** What a promise rejected with, or undefined when it fulfilled. */
async function rejection(promise: Promise<unknown>): Promise<{ name?: string } | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => error as { name?: string },
  );
}

/**
 * Caller A and caller B join one piece of work whose request `hold` keeps at the proxy; A aborts.
 * A must fail with its abort, B must get the result, and the proxy must have seen one request,
 * never given up. Returns B's result.
 */
export async function oneCallerAborts<T>(
  t: ExecutionContext,
  hold: Hold,
  call: SharedCall<T>,
): Promise<T> {
  const first = new AbortController();
  const a = call(first.signal);
  const b = call(new AbortController().signal);
  await hold.arrived();
  await nextTurn();
  first.abort();
  t.is((await rejection(a))?.name, 'AbortError', 'the caller that aborted fails with its abort');
  hold.release();
  const result = await b;
  t.is(hold.arrivedCount, 1, 'both callers shared one request');
  t.is(hold.abandonedCount, 0, 'the shared request was not given up');
  return result;
}

/**
 * Callers A and B join one piece of work whose request `hold` keeps at the proxy; both abort.
 * Both must fail with their abort and the proxy must see the request's connection closed.
 */
export async function everyCallerAborts<T>(
  t: ExecutionContext,
  hold: Hold,
  call: SharedCall<T>,
): Promise<void> {
  const controllers = [new AbortController(), new AbortController()];
  const calls = controllers.map((controller) => call(controller.signal));
  await hold.arrived();
  await nextTurn();
  for (const controller of controllers) controller.abort();
  for (const each of calls) t.is((await rejection(each))?.name, 'AbortError');
  await hold.abandoned();
  t.is(hold.arrivedCount, 1, 'both callers shared one request');
}
