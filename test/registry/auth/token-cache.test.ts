import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { TokenCache } from '../../../src/registry/auth/token-cache.ts';

test('tokens are found by registry and scope set in any order', (t) => {
  const cache = new TokenCache();
  cache.set('r.example', ['repository:b:pull', 'repository:a:push,pull'], 'tok', 300);
  t.is(
    cache.get('r.example', ['repository:a:pull', 'repository:a:push', 'repository:b:pull']),
    'tok',
  );
  t.is(cache.get('r.example', ['repository:a:pull']), undefined);
  t.is(cache.get('other.example', ['repository:b:pull', 'repository:a:push,pull']), undefined);
  cache.delete('r.example', ['repository:a:pull,push', 'repository:b:pull']);
  t.is(cache.get('r.example', ['repository:a:pull,push', 'repository:b:pull']), undefined);
});

test('tokens expire a little before the server said they would', async (t) => {
  const cache = new TokenCache();
  cache.set('r', ['s:a:pull'], 'short', 0.3);
  t.is(cache.get('r', ['s:a:pull']), 'short');
  await sleep(300);
  t.is(cache.get('r', ['s:a:pull']), undefined);
  cache.set('r', ['s:a:pull'], 'gone', 0);
  t.is(cache.get('r', ['s:a:pull']), undefined);
});
