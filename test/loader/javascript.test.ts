import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
// @ts-expect-error: plain JavaScript without declarations.
import { keptPath, prepare } from './javascript.mjs';

const CACHE_DIR = path.resolve(import.meta.dirname, '../../node_modules/.cache/ociferry-ts');
const TWO_DAYS_AGO = new Date(Date.now() - 2 * 24 * 3600 * 1000);

test('prepare removes kept JavaScript no file needs once it is a day old, and keeps what files need', async (t) => {
  await mkdir(CACHE_DIR, { recursive: true });
  const name = (label: string) =>
    path.join(CACHE_DIR, `${label}-${randomBytes(8).toString('hex')}.mjs`);
  const stale = name('stale');
  const recent = name('recent');
  t.teardown(() => Promise.all([stale, recent].map((file) => rm(file, { force: true }))));
  await writeFile(stale, '');
  await writeFile(recent, '');
  await utimes(stale, TWO_DAYS_AGO, TWO_DAYS_AGO);
  const file = path.resolve(import.meta.dirname, '../../src/util/limiter.ts');
  const needed: string = keptPath(file, await readFile(file, 'utf8'));
  await prepare([file]);
  await utimes(needed, TWO_DAYS_AGO, TWO_DAYS_AGO);
  await prepare([file]);
  t.false(existsSync(stale));
  t.true(existsSync(recent));
  t.true(existsSync(needed));
});
