import test from 'ava';
import { formatBytes, formatDuration, shortDigest } from '../../src/cli/format.ts';

test('bytes are shown in decimal units with three significant digits', (t) => {
  t.deepEqual([0, 999, 1000, 1234, 12_345, 123_456, 1_234_567, 5e12].map(formatBytes), [
    '0 B',
    '999 B',
    '1.00 kB',
    '1.23 kB',
    '12.3 kB',
    '123 kB',
    '1.23 MB',
    '5.00 TB',
  ]);
});

test('durations are shown in the largest sensible units', (t) => {
  t.deepEqual([250, 1000, 59_400, 61_000, 3_725_000].map(formatDuration), [
    '250ms',
    '1s',
    '59s',
    '1m01s',
    '1h02m',
  ]);
});

test('a short digest keeps the algorithm and 12 hex digits', (t) => {
  t.is(shortDigest(`sha256:${'0123456789abcdef'.repeat(4)}`), 'sha256:0123456789ab…');
  t.is(shortDigest('sha256:abc'), 'sha256:abc');
});
