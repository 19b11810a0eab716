import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { Limiter, mapLimit } from '../../src/util/limiter.ts';

test('limiter never runs more than its concurrency', async (t) => {
  const limiter = new Limiter(3);
  let running = 0;
  let peak = 0;
  await Promise.all(
    Array.from({ length: 20 }, () =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(2);
        running--;
      }),
    ),
  );
  t.is(peak, 3);
  t.is(limiter.active, 0);
});

test('an aborted waiter leaves the queue without taking a slot', async (t) => {
  const limiter = new Limiter(1);
  let release!: () => void;
  const first = limiter.run(() => new Promise<void>((resolve) => (release = resolve)));
  const controller = new AbortController();
  const waiting = limiter.run(async () => 'ran', controller.signal);
  controller.abort(new Error('stop'));
  await t.throwsAsync(waiting, { message: 'stop' });
  release();
  await first;
  t.is(await limiter.run(async () => 'next'), 'next');
});

test('waiters on one signal share one abort listener, removed once none waits', async (t) => {
  const limiter = new Limiter(1);
  let release!: () => void;
  const first = limiter.run(() => new Promise<void>((resolve) => (release = resolve)));
  const controller = new AbortController();
  const ran: number[] = [];
  const waiting = Array.from({ length: 50 }, (_, i) =>
    limiter.run(async () => {
      ran.push(i);
    }, controller.signal),
  );
  t.is(getEventListeners(controller.signal, 'abort').length, 1);
  await sleep(1);
  release();
  await first;
  await Promise.all(waiting);
  t.is(ran.length, 50);
  t.is(getEventListeners(controller.signal, 'abort').length, 0);

  // An abort cancels every waiter through that one listener.
  let hold!: () => void;
  const busy = limiter.run(() => new Promise<void>((resolve) => (hold = resolve)));
  const cancelled = Array.from({ length: 20 }, () =>
    limiter.run(async () => 'ran', controller.signal),
  );
  controller.abort(new Error('stop'));
  for (const each of cancelled) await t.throwsAsync(each, { message: 'stop' });
  await sleep(1);
  hold();
  await busy;
  t.is(limiter.active, 0);
});

test('mapLimit keeps order and fails fast', async (t) => {
  t.deepEqual(await mapLimit([3, 1, 2], 2, async (n) => n * 2), [6, 2, 4]);
  await t.throwsAsync(
    mapLimit([1, 2], 2, async (n) => {
      if (n === 2) throw new Error('boom');
      return n;
    }),
    { message: 'boom' },
  );
});
