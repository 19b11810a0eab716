import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { SingleFlight } from '../../src/util/single-flight.ts';

/** Work that waits until released or aborted, recording the signal it ran on. */
function gatedWork() {
  const runs: AbortSignal[] = [];
  let release: (value: number) => void = () => undefined;
  const work = (signal: AbortSignal) => {
    runs.push(signal);
    return new Promise<number>((resolve, reject) => {
      release = resolve;
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  };
  return { runs, work, release: (value: number) => release(value) };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

test('single flight runs concurrent work once and forgets it after', async (t) => {
  const flight = new SingleFlight<string, number>();
  let calls = 0;
  const work = async () => {
    calls++;
    await sleep(5);
    return calls;
  };
  const results = await Promise.all(Array.from({ length: 10 }, () => flight.do('k', work)));
  t.deepEqual(new Set(results), new Set([1]));
  t.is(flight.size, 0);
  t.is(await flight.do('k', work), 2);
});

test('a caller that aborts leaves with its reason while the others get the result', async (t) => {
  const flight = new SingleFlight<string, number>();
  const { runs, work, release } = gatedWork();
  const a = new AbortController();
  const first = flight.do('k', work, a.signal);
  const second = flight.do('k', work, new AbortController().signal);
  const third = flight.do('k', work);
  a.abort(new Error('a gave up'));
  t.is(((await rejection(first)) as Error).message, 'a gave up');
  t.false(runs[0]?.aborted, 'the work goes on for the callers left');
  release(7);
  t.deepEqual(await Promise.all([second, third]), [7, 7]);
  t.is(runs.length, 1);
});

test('the work is aborted when its last caller leaves, and a later caller starts afresh', async (t) => {
  const flight = new SingleFlight<string, number>();
  const { runs, work, release } = gatedWork();
  const controllers = [new AbortController(), new AbortController()];
  const calls = controllers.map((c) => flight.do('k', work, c.signal));
  controllers[0]?.abort();
  t.false(runs[0]?.aborted);
  controllers[1]?.abort();
  t.true(runs[0]?.aborted);
  for (const call of calls) t.is(((await rejection(call)) as Error).name, 'AbortError');
  t.is(flight.size, 0);
  const again = flight.do('k', work);
  t.is(runs.length, 2);
  release(3);
  t.is(await again, 3);
});

test('a caller without a signal keeps the work alive', async (t) => {
  const flight = new SingleFlight<string, number>();
  const { runs, work, release } = gatedWork();
  const a = new AbortController();
  const aborted = flight.do('k', work, a.signal);
  const patient = flight.do('k', work);
  a.abort();
  await rejection(aborted);
  t.false(runs[0]?.aborted);
  release(1);
  t.is(await patient, 1);
});

test('an already aborted caller neither starts nor joins work', async (t) => {
  const flight = new SingleFlight<string, number>();
  const { runs, work } = gatedWork();
  const error = await rejection(flight.do('k', work, AbortSignal.abort()));
  t.is((error as Error).name, 'AbortError');
  t.deepEqual(runs, []);
  t.is(flight.size, 0);
});

test('a failure reaches every caller and the key can be tried again', async (t) => {
  const flight = new SingleFlight<string, number>();
  const fail = async () => {
    throw new Error('boom');
  };
  const signal = new AbortController().signal;
  await t.throwsAsync(flight.do('k', fail, signal), { message: 'boom' });
  await t.throwsAsync(flight.do('k', fail), { message: 'boom' });
  t.is(await flight.do('k', async () => 5, signal), 5);
});

test('callers on one signal share one abort listener, removed once the work settles', async (t) => {
  const flight = new SingleFlight<number, number>();
  const signal = new AbortController().signal;
  const gates = Array.from({ length: 20 }, () => gatedWork());
  const calls = gates.map((gate, i) => flight.do(i, gate.work, signal));
  t.is(getEventListeners(signal, 'abort').length, 1);
  for (const [i, gate] of gates.entries()) gate.release(i);
  t.deepEqual(await Promise.all(calls), [...gates.keys()]);
  t.is(getEventListeners(signal, 'abort').length, 0);
});

test('the last caller to leave returns only once the aborted work has wound down', async (t) => {
  const flight = new SingleFlight<string, number>();
  const steps: string[] = [];
  const work = (signal: AbortSignal) =>
    new Promise<number>((_resolve, reject) => {
      signal.addEventListener('abort', () => {
        setImmediate(() => {
          steps.push('work cleaned up');
          reject(signal.reason);
        });
      });
    });
  const controller = new AbortController();
  const call = flight.do('k', work, controller.signal).catch(() => steps.push('caller returned'));
  controller.abort();
  await call;
  t.deepEqual(steps, ['work cleaned up', 'caller returned']);
});
