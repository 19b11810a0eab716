import { getEventListeners } from 'node:events';
import test from 'ava';
import { AbortWatch } from '../../src/util/abort-watch.ts';
import { childSignal } from '../../src/util/child-signal.ts';

test('child signals abort with their parent’s reason through one listener on it', (t) => {
  const watch = new AbortWatch();
  const parent = new AbortController();
  const children = Array.from({ length: 20 }, () => childSignal(watch, parent.signal));
  t.is(getEventListeners(parent.signal, 'abort').length, 1);
  children[0]?.dispose();
  const reason = new Error('user abort');
  parent.abort(reason);
  t.false(children[0]?.signal.aborted, 'a disposed child is left alone');
  for (const child of children.slice(1)) t.is(child.signal.reason, reason);
  const late = childSignal(watch, parent.signal);
  t.is(late.signal.reason, reason, 'a child of an aborted parent starts aborted');
});

test('the parent loses its listener once every child is disposed', (t) => {
  const watch = new AbortWatch();
  const parent = new AbortController();
  const children = Array.from({ length: 5 }, () => childSignal(watch, parent.signal));
  for (const child of children) child.dispose();
  t.is(getEventListeners(parent.signal, 'abort').length, 0);
});
