import test from 'ava';
import { TransferTracker } from '../../../src/cli/progress/tracker.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

test('counts skipped, mounted and uploaded blobs and the bytes moved', (t) => {
  const tracker = new TransferTracker(0);
  tracker.apply({ type: 'blob-skipped', digest: A, size: 5 }, 0);
  tracker.apply({ type: 'blob-mounted', digest: B, size: 7, from: 'x/y' }, 0);
  tracker.apply({ type: 'blob-start', digest: A, size: 100 }, 0);
  tracker.apply({ type: 'blob-progress', digest: A, size: 100, bytes: 40 }, 10);
  t.is(tracker.transferred, 40);
  t.deepEqual(
    [...tracker.inFlight.values()].map((blob) => blob.digest),
    [A],
  );
  tracker.apply({ type: 'blob-done', digest: A, size: 100 }, 20);
  t.deepEqual(
    [tracker.skipped, tracker.mounted, tracker.uploaded, tracker.transferred, tracker.planned],
    [1, 1, 1, 100, 100],
  );
  t.is(tracker.inFlight.size, 0);
});

test('the rate covers the last seconds and gives an ETA for the bytes left', (t) => {
  const tracker = new TransferTracker(0);
  tracker.apply({ type: 'blob-start', digest: A, size: 10_000 }, 0);
  for (let ms = 100; ms <= 1000; ms += 100) {
    tracker.apply({ type: 'blob-progress', digest: A, size: 10_000, bytes: ms * 2 }, ms);
  }
  t.is(Math.round(tracker.rate(1000)), 2000);
  t.is(Math.round(tracker.eta(1000) ?? 0), 4000);
  for (let ms = 1100; ms <= 9000; ms += 100) {
    tracker.apply({ type: 'blob-progress', digest: A, size: 10_000, bytes: 2000 }, ms);
  }
  t.is(tracker.rate(9000), 0, 'a stall long enough empties the window');
  t.is(tracker.eta(9000), undefined);
});

test('one blob going to two destinations is two transfers', (t) => {
  const tracker = new TransferTracker(0);
  const digest = `sha256:${'b'.repeat(64)}`;
  tracker.apply({ type: 'blob-start', digest, size: 10, target: 'reg-a/x' }, 1);
  tracker.apply({ type: 'blob-start', digest, size: 10, target: 'oci:/tmp/y' }, 1);
  tracker.apply({ type: 'blob-progress', digest, size: 10, bytes: 4, target: 'reg-a/x' }, 2);
  t.is(tracker.inFlight.size, 2);
  t.is(tracker.transferred, 4);
  tracker.apply({ type: 'blob-done', digest, size: 10, target: 'reg-a/x' }, 3);
  t.is(tracker.inFlight.size, 1);
  t.is(tracker.uploaded, 1);
});
