import test from 'ava';
import { InvalidArgumentError } from 'commander';
import { durationArg, sizeArg } from '../../src/cli/args.ts';

test('sizes take decimal and binary units', (t) => {
  t.is(sizeArg('1048576'), 1048576);
  t.is(sizeArg('1MiB'), 1048576);
  t.is(sizeArg('1mib'), 1048576);
  t.is(sizeArg('500MB'), 500_000_000);
  t.is(sizeArg('1.5KiB'), 1536);
  t.is(sizeArg('2 GB'), 2e9);
  for (const bad of ['', 'MiB', '-1', '1 parsec', '1e3', '1.5.2MB']) {
    t.throws(() => sizeArg(bad), { instanceOf: InvalidArgumentError }, bad);
  }
});

test('durations need a unit on every number', (t) => {
  t.is(durationArg('72h'), 72 * 3_600_000);
  t.is(durationArg('7d'), 7 * 86_400_000);
  t.is(durationArg('1h30m'), 90 * 60_000);
  t.is(durationArg('1m30s'), 90_000);
  t.is(durationArg('250ms'), 250);
  t.is(durationArg('2w'), 14 * 86_400_000);
  for (const bad of ['', '7', 'd', '1h30', '-1h', '1y', '1 h']) {
    t.throws(() => durationArg(bad), { instanceOf: InvalidArgumentError }, bad);
  }
});
