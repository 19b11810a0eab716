import path from 'node:path';
import test from 'ava';
import { Hold, startFaultProxy } from '../../helpers/fault-proxy.ts';
import { pushFixture } from '../../helpers/fixtures.ts';
import { startRegistry } from '../../helpers/registry.ts';
import { tempDir } from '../support/cli.ts';
import { onTerminal } from '../support/terminal.ts';

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

test('on a terminal, copy draws a bar per blob and a total line, then the summary', async (t) => {
  const registry = await startRegistry(t);
  const pushed = await pushFixture(registry, 'layers-40', 'app/forty');
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\/sha256:/, action: { delayMs: 150 } },
  ]);
  const dir = path.join(await tempDir(t), 'layout');

  const { code, output } = await onTerminal([
    'copy',
    `${proxy.host}/app/forty:v1`,
    `oci:${dir}:v1`,
  ]);
  t.is(code, 0, output);
  t.true(output.includes(HIDE_CURSOR));
  const drawn = output.replaceAll('\x1b', '⎋');
  t.regex(drawn, /⎋\[2Ksha256:[0-9a-f]{12}… \[[=> ]{24}\] [\d.]+ k?B \/ [\d.]+ k?B\r?\n/);
  t.regex(drawn, /⎋\[2Ktotal [\d.]+ k?B \/ [\d.]+ k?B.*\(\d+ written, 0 mounted, 0 skipped\)/);
  t.regex(drawn, /⎋\[\d+A\r/, 'frames are redrawn in place');
  const shown = output.lastIndexOf(SHOW_CURSOR);
  t.true(shown > output.lastIndexOf(HIDE_CURSOR), 'the cursor is shown again');
  const after = output.slice(shown + SHOW_CURSOR.length);
  t.regex(
    after,
    /^copied .*: 41 written \([\d.]+ kB\), 0 mounted, 0 skipped, \d+ requests in \S+\r?\n/,
  );
  t.regex(after, new RegExp(`^${pushed.digest}\\r?$`, 'm'));
});

test('Ctrl-C during a copy restores the cursor and exits with status 130', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'layers-40', 'app/forty');
  // Blob reads are held and never released: the copy ends only because Ctrl-C stops it.
  const hold = new Hold();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\/sha256:/, action: { hold } },
  ]);
  const dir = path.join(await tempDir(t), 'layout');
  let typed = false;
  const mark = await registry.mark();
  const { code, output } = await onTerminal(
    ['copy', `${proxy.host}/app/forty:v1`, `oci:${dir}:v1`],
    {
      onOutput: (soFar, type) => {
        if (!typed && soFar.includes(HIDE_CURSOR)) {
          typed = true;
          type('\x03');
        }
      },
    },
  );
  t.true(typed, output);
  t.is(code, 130, output);
  t.deepEqual(
    await registry.requests({ method: 'GET', path: /\/blobs\//, since: mark }),
    [],
    'no blob was read',
  );
  const shown = output.lastIndexOf(SHOW_CURSOR);
  t.true(shown > output.lastIndexOf(HIDE_CURSOR), 'the cursor is shown again');
  t.regex(output.slice(shown), /error: copy .*: interrupted/);
});

test('a warning during a copy on a terminal is printed above the bars, not inside them', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'layers-40', 'app/forty');
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\/sha256:/, action: { delayMs: 150 } },
  ]);
  const dir = path.join(await tempDir(t), 'layout');
  let warned = false;
  const { code, output } = await onTerminal(
    ['copy', `${proxy.host}/app/forty:v1`, `oci:${dir}:v1`],
    {
      // Once bars are on screen, one blob answer states a nearly spent quota (and is retried).
      onOutput: (soFar) => {
        if (warned || !soFar.includes('\x1b[2Ktotal ')) return;
        warned = true;
        proxy.rules.unshift({
          method: 'GET',
          path: /\/blobs\/sha256:/,
          times: 1,
          action: {
            status: 429,
            headers: {
              'retry-after': '0',
              'ratelimit-limit': '100;w=21600',
              'ratelimit-remaining': '1;w=21600',
            },
          },
        });
      },
    },
  );
  t.true(warned, output);
  t.is(code, 0, output);
  const drawn = output.replaceAll('\x1b', '⎋');
  t.regex(
    drawn,
    /⎋\[\d+A\r⎋\[Jwarning: \S+ rate limit nearly used up: [^\n]*\r?\n⎋\[2K/,
    'bars erased, the warning on its own line, bars drawn again',
  );
});
