import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { settleAll } from '../../src/util/settle.ts';

test('settleAll resolves in order like Promise.all', async (t) => {
  t.deepEqual(await settleAll([sleep(5).then(() => 1), Promise.resolve(2)]), [1, 2]);
});

test('settleAll rejects with the first failure only after the others settled', async (t) => {
  let slowDone = false;
  const slow = sleep(30).then(() => {
    slowDone = true;
  });
  await t.throwsAsync(
    settleAll([Promise.reject(new Error('first')), slow, Promise.reject(new Error('second'))]),
    {
      message: 'first',
    },
  );
  t.true(slowDone);
});
