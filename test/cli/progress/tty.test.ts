import test from 'ava';
import { TtyProgress } from '../../../src/cli/progress/tty.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;

/** Terminal output with ESC shown as ⎋, so that patterns need no control characters. */
function visible(text: string | undefined): string {
  return (text ?? '').replaceAll('\x1b', '⎋');
}

/** A terminal stand-in that records every write. */
function terminal(columns = 100) {
  const writes: string[] = [];
  return { writes, columns, write: (text: string) => writes.push(text) > 0 };
}

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test('the first event draws a bar and a total line at once, hiding the cursor', (t) => {
  const tty = terminal();
  const progress = new TtyProgress(tty, { now: clock().now });
  progress.onEvent({ type: 'blob-start', digest: A, size: 2000 });
  t.is(tty.writes.length, 1);
  const frame = visible(tty.writes[0]);
  t.true(frame.startsWith('⎋[?25l'));
  t.regex(frame, /⎋\[2Ksha256:aaaaaaaaaaaa… \[> +\] 0 B \/ 2\.00 kB\n/);
  t.regex(frame, /⎋\[2Ktotal 0 B \/ 2\.00 kB {2}\(0 uploaded, 0 mounted, 0 skipped\)\n/);
  progress.stop();
});

test('redraws are throttled and overwrite the previous frame in place', (t) => {
  const tty = terminal();
  const time = clock();
  const progress = new TtyProgress(tty, { now: time.now, intervalMs: 100 });
  progress.onEvent({ type: 'blob-start', digest: A, size: 2000 });
  progress.onEvent({ type: 'blob-start', digest: B, size: 1000 });
  progress.onEvent({ type: 'blob-progress', digest: A, size: 2000, bytes: 1000 });
  t.is(tty.writes.length, 1, 'events within the interval do not draw');
  time.advance(100);
  progress.onEvent({ type: 'blob-skipped', digest: C, size: 10 });
  t.is(tty.writes.length, 2);
  const frame = visible(tty.writes[1]);
  t.true(frame.startsWith('⎋[2A\r'), 'moves up over the 2 lines of the first frame');
  t.regex(frame, /sha256:aaaaaaaaaaaa… \[={12}> +\] 1\.00 kB \/ 2\.00 kB/);
  t.regex(frame, /sha256:bbbbbbbbbbbb…/);
  t.regex(frame, /total 1\.00 kB \/ 3\.00 kB.*\(0 uploaded, 0 mounted, 1 skipped\)\n⎋\[J$/);
  progress.stop();
});

test('a trailing redraw shows the last state after a burst', async (t) => {
  const tty = terminal();
  // A clock that stands still between the two events, as a busy machine's may not: only the
  // trailing redraw's timer draws the second frame.
  const progress = new TtyProgress(tty, { now: clock().now, intervalMs: 20 });
  progress.onEvent({ type: 'blob-start', digest: A, size: 100 });
  progress.onEvent({ type: 'blob-done', digest: A, size: 100 });
  t.is(tty.writes.length, 1);
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.is(tty.writes.length, 2);
  t.regex(tty.writes[1] ?? '', /total 100 B \/ 100 B.*1 uploaded/);
  t.notRegex(tty.writes[1] ?? '', /sha256:a/, 'a finished blob has no bar');
  progress.stop();
});

test('stop erases the bars and shows the cursor again', (t) => {
  const tty = terminal();
  const progress = new TtyProgress(tty, { now: clock().now });
  progress.onEvent({ type: 'blob-start', digest: A, size: 100 });
  progress.onEvent({ type: 'blob-mounted', digest: B, size: 100, from: 'src/repo' });
  progress.stop();
  t.deepEqual(tty.writes.slice(1), ['\x1b[2A\r\x1b[J', '\x1b[?25h']);
  progress.stop();
  t.is(tty.writes.length, 3, 'a second stop writes nothing');
});

test('lines never wrap: they are cut to the terminal width', (t) => {
  const tty = terminal(30);
  const progress = new TtyProgress(tty, { now: clock().now });
  progress.onEvent({ type: 'blob-start', digest: A, size: 123456789 });
  const lines = (tty.writes[0] ?? '').split('\n').slice(0, -1);
  for (const line of lines) {
    const text = visible(line).replace(/⎋\[[?\d]*[A-Za-z]/g, '');
    t.true(text.length <= 29, text);
  }
  progress.stop();
});

test('more blobs in flight than bars are counted on one line', (t) => {
  const tty = terminal();
  const progress = new TtyProgress(tty, { now: clock().now, maxBars: 2, intervalMs: 0 });
  for (const digest of [A, B, C]) progress.onEvent({ type: 'blob-start', digest, size: 1 });
  const frame = tty.writes.at(-1) ?? '';
  t.is(frame.match(/\[> +\]/g)?.length, 2);
  t.regex(frame, /… and 1 more in flight/);
  progress.stop();
});

test('a note goes where the bars were, and the bars are drawn again below it', (t) => {
  const tty = terminal();
  const progress = new TtyProgress(tty, { now: clock().now });
  progress.onEvent({ type: 'blob-start', digest: A, size: 2000 });
  tty.writes.length = 0;
  progress.note('warning: registry says: slow down');
  const out = visible(tty.writes.join(''));
  const erase = out.indexOf('⎋[2A\r⎋[J');
  const line = out.indexOf('warning: registry says: slow down\n');
  const redraw = out.indexOf('sha256:aaaaaaaaaaaa…');
  t.true(erase === 0, 'the 2-line frame is erased first');
  t.true(line > erase && redraw > line, 'then the line, then the bars again');
  tty.writes.length = 0;
  progress.stop();
  t.true(visible(tty.writes.join('')).startsWith('⎋[2A\r⎋[J'), 'stop erases the redrawn frame');
});

test('a note before any frame is just a line', (t) => {
  const tty = terminal();
  const progress = new TtyProgress(tty, { now: clock().now });
  progress.note('warning: x');
  t.deepEqual(tty.writes, ['warning: x\n']);
  progress.stop();
});

test('blobs done into an oci: layout count as written, not uploaded', (t) => {
  const tty = terminal();
  const progress = new TtyProgress(tty, { now: clock().now, intervalMs: 0 });
  const target = 'oci:/tmp/layout';
  progress.onEvent({ type: 'blob-start', digest: A, size: 100, target });
  progress.onEvent({ type: 'blob-done', digest: A, size: 100, target });
  progress.stop();
  t.regex(visible(tty.writes[0]), /total 0 B \/ 100 B {2}\(0 written, 0 mounted, 0 skipped\)/);
  t.regex(visible(tty.writes[1]), /total 100 B \/ 100 B.*\(1 written, 0 mounted, 0 skipped\)/);
});
