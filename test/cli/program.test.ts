import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { ociferry, ociferryProcess } from './support/cli.ts';

test('--version prints the version of package.json', async (t) => {
  const pkg = JSON.parse(
    await readFile(path.resolve(import.meta.dirname, '../../package.json'), 'utf8'),
  );
  // A process of its own: the exit status main() sets, 0.
  const result = await ociferryProcess(['--version']);
  t.is(result.code, 0);
  t.is(result.stdout, `${pkg.version}\n`);
});

test('every command has help with examples, exit status 0', async (t) => {
  const main = await ociferry(['--help']);
  t.is(main.code, 0);
  for (const command of ['inspect', 'copy', 'index', 'blob', 'tags', 'login', 'logout']) {
    t.regex(main.stdout, new RegExp(`^  ${command} `, 'm'));
  }
  const commands = [
    ['inspect'],
    ['copy'],
    ['index', 'create'],
    ['blob', 'get'],
    ['tags'],
    ['login'],
    ['logout'],
  ];
  const helps = await Promise.all(commands.map((words) => ociferry([...words, '--help'])));
  for (const [i, help] of helps.entries()) {
    t.is(help.code, 0);
    t.regex(help.stdout, /^Examples:\n {2}\$ .*ociferry /m, commands[i]?.join(' '));
    t.regex(help.stdout, /^Global Options:/m);
  }
});

test('usage errors exit with status 2 and a hint, without echoing a password', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['inspect'], /missing required argument 'ref'/],
    [['inspect', '--bogus', 'a/b'], /unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['--progress', 'fancy', 'tags', 'a/b'], /--progress.*fancy.*choices/],
    [['inspect', '--platform', 'linux', 'a/b'], /invalid platform "linux"/],
    [['copy', '--concurrency', '0', 'a/b', 'c/d'], /at least 1/],
    [
      ['inspect', 'alice:hunter2@registry.example/app'],
      /invalid reference "\*\*\*@registry\.example\/app"/,
    ],
  ];
  const results = await Promise.all(cases.map(([args]) => ociferry(args)));
  for (const [i, result] of results.entries()) {
    const [args, message] = cases[i] ?? [[], /./];
    t.is(result.code, 2, args.join(' '));
    t.regex(result.stderr, message);
    t.regex(result.stderr, /^hint: run 'ociferry [a-z ]*--help' for usage$/m);
    t.false(result.stderr.includes('hunter2'));
  }
});

test('no command at all prints the help on stderr with status 2', async (t) => {
  // A process of its own: the exit status main() sets, 2.
  const result = await ociferryProcess([]);
  t.is(result.code, 2);
  t.regex(result.stderr, /^Usage: ociferry /);
});

test('help COMMAND... prints that command help with status 0; an unknown command is a usage error', async (t) => {
  const [copy, indexCreate, direct, nosuch] = await Promise.all([
    ociferry(['help', 'copy']),
    ociferry(['help', 'index', 'create']),
    ociferry(['index', 'create', '--help']),
    ociferry(['help', 'nosuch']),
  ]);
  t.is(copy.code, 0, copy.stderr);
  t.regex(copy.stdout, /^Usage: ociferry copy \[options\] <src> <dst>/);
  t.is(indexCreate.code, 0, indexCreate.stderr);
  t.is(indexCreate.stdout, direct.stdout, 'help index create is the help of index create');
  t.regex(indexCreate.stdout, /^Usage: ociferry index create /);
  t.is(nosuch.code, 2);
  t.is(nosuch.stdout, '');
  t.regex(nosuch.stderr, /^error: unknown command 'nosuch'$/m);
  t.regex(nosuch.stderr, /^hint: run 'ociferry --help' for usage$/m);
});
