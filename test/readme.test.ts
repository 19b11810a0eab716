import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { Command, Option } from 'commander';
import { processIO } from '../src/cli/io.ts';
import { createProgram } from '../src/cli/program.ts';
import { builtPackage } from './helpers/package.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');

test('the README quick-start commands are npm scripts of this package', async (t) => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
  const scripts = [...readme.matchAll(/^npm (?:run )?([a-z-]+)\b/gm)].map((m) => m[1]);
  t.true(scripts.includes('demo') && scripts.includes('test'));
  for (const script of scripts) {
    if (script === 'install' || script === 'pack') continue;
    t.truthy(pkg.scripts[script ?? ''], `npm run ${script} exists`);
  }
});

test('the README library example type-checks against the package API', async (t) => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!example) return t.fail('the README has no TypeScript example');
  // A project beside this one that has the package installed, built as packed: 'ociferry' is its
  // declarations, whose own imports resolve to this project's dependencies.
  const dir = await mkdtemp(path.join(root, '.readme-check-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'node_modules'));
  await symlink(await builtPackage(), path.join(dir, 'node_modules', 'ociferry'));
  await writeFile(path.join(dir, 'example.ts'), `export {};\n${example}`);
  await writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../tsconfig.json',
      compilerOptions: { noEmit: true, preserveSymlinks: true },
      include: ['example.ts'],
    }),
  );
  const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
  const result = await run(tsc, ['-p', path.join(dir, 'tsconfig.json')]).catch(
    (error: { stdout: string }) => error,
  );
  t.is(result.stdout, '', 'tsc reports nothing');
});

/** `index create` for the `create` subcommand of `index`. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The commands that run something (`index create`, not `index`), with their paths. */
function leafCommands(command: Command): Command[] {
  if (command.commands.length === 0) return [command];
  return command.commands.flatMap(leafCommands);
}

/** How an option may be written in the synopsis: its long flag or, failing that, its short one. */
function spellings(option: Option): string[] {
  return [option.long, option.short].filter((flag): flag is string => flag !== undefined);
}

test('the README CLI synopsis has a line for every command with every option its --help lists', async (t) => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const cli = readme.slice(readme.indexOf('## CLI'));
  const synopsis = /```\n([\s\S]*?)```/.exec(cli)?.[1]?.split('\n') ?? [];
  const program = createProgram(processIO(), async () => {});
  const written = (spelling: string, text: string) =>
    new RegExp(`(?:^|[\\s[|\`])${spelling}(?=[\\s\\]|\`]|$)`).test(text);
  const shown = (option: Option, text: string) =>
    spellings(option).some((spelling) => written(spelling, text));
  const problems: string[] = [];
  const paths = leafCommands(program).map(commandPath);
  for (const command of leafCommands(program)) {
    const name = commandPath(command);
    const line = synopsis.find(
      (l) => l === `ociferry ${name}` || l.startsWith(`ociferry ${name} `),
    );
    if (!line) problems.push(`no line for '${name}'`);
    for (const option of command.options) {
      if (line && option.long !== '--help' && !shown(option, line)) {
        problems.push(`'${name}' lacks ${option.flags}`);
      }
    }
  }
  for (const line of synopsis.filter((l) => /^ociferry [a-z]/.test(l))) {
    const words = line.split(' ').slice(1);
    if (!paths.some((p) => words.slice(0, p.split(' ').length).join(' ') === p)) {
      problems.push(`'${line}' names no command`);
    }
  }
  const globals = cli.slice(cli.indexOf('Global flags'), cli.indexOf('Exit codes'));
  for (const option of program.options) {
    if (!['--help', '--version'].includes(option.long ?? '') && !shown(option, globals)) {
      problems.push(`the global flags lack ${option.flags}`);
    }
  }
  t.deepEqual(problems, []);
});
