// Test files that share a test process in a run of the whole suite. Each of ava's test processes
// costs about 0.3 s of CPU before its file's first test (ava loads some 350 modules of its own) and
// as much again to load the library: for a hundred small files that was a fifth of the suite's CPU.
// So the test files of one directory share a process, each declaring its tests as it would alone,
// its titles beginning with its name (ava.mjs), and a file runs alone when it is slow (it keeps a
// core busy by itself), changes its process (environment, listeners, working directory, exit),
// declares its tests after a top-level `await` (ava starts a process's tests on the tick after the
// first is declared) or has a hook around each test (ava would run it around the others' tests).
// Its `before` and `after` hooks run once for the process, as they are setup of its own.
//
// ava runs files, so each group, and each file alone, is a file of test/.groups/ (ignored by git)
// whose path gives ava's prefix of its titles as the test files' own paths give it:
// test/.groups/util.test.ts for test/util/*.test.ts, test/.groups/cache/copy.test.ts for a file
// alone. Test processes load its JavaScript from the run's tree (tree.mjs), where it imports its
// test files. A run that names test files (`npx ava test/util/limiter.test.ts`) runs them as ava
// does, each in a process of its own.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Where the files ava runs for the groups are, in the repository. */
export const GROUPS_DIR = path.join(ROOT, 'test', '.groups');
const TEST_DIR = path.join(ROOT, 'test');
const SEPARATOR = ' › ';

/** Statements of a test file's JavaScript (esbuild's output) that change the test process. */
const CHANGES_PROCESS =
  /\bprocess\.(?:env(?:\.\w+|\[[^\]\n]+\])\s*=[^=]|on\(|once\(|chdir\(|exit\(|exitCode\s*=[^=])|\bdelete process\.env\b/;
/** A top-level `await`: esbuild writes top-level statements from the start of a line. */
const TOP_LEVEL_AWAIT = /^(?![^\n]*\basync\b)(?=[^\s/}])[^\n]*\bawait\b/m;
/** A hook ava runs around each test of the process, the group's other files' tests too. */
const EACH_HOOK = /\.(?:beforeEach|afterEach)\b/;

/** A test file's name: its path under test/ without `.test.ts` (`util/limiter`). */
export function testName(file) {
  return path.relative(TEST_DIR, file).replace(/\.test\.ts$/, '');
}

/** Whether a test file whose JavaScript is `code` needs a test process of its own. */
export function needsOwnProcess(code) {
  return CHANGES_PROCESS.test(code) || TOP_LEVEL_AWAIT.test(code) || EACH_HOOK.test(code);
}

/**
 * The groups of `testFiles` (absolute paths of test/**\/*.test.ts, each with its JavaScript as
 * `code`): files for which `alone(file, code)` holds, or {@link needsOwnProcess}, and the only
 * such file of a directory, are groups of their own; the other files of a directory are one
 * group. Each group has its `name` (`util`, `cache/copy`: its file in test/.groups/) and its
 * `members`, each with the prefix of its tests' titles when it shares the group.
 */
export function planGroups(testFiles, alone) {
  const groups = [];
  const shared = new Map();
  for (const { file, code } of testFiles) {
    const name = testName(file);
    if (alone(file, code) || needsOwnProcess(code)) {
      groups.push({ name, members: [{ file }] });
      continue;
    }
    const dir = path.dirname(name);
    if (dir === '.') {
      // ava gives files of test/ itself no prefix but their name: a group has one.
      groups.push({ name, members: [{ file }] });
      continue;
    }
    if (!shared.has(dir)) shared.set(dir, []);
    shared.get(dir).push({ file, titlePrefix: `${path.basename(name)}${SEPARATOR}` });
  }
  for (const [dir, members] of shared) {
    const [{ file }] = members;
    groups.push(
      members.length === 1 ? { name: testName(file), members: [{ file }] } : { name: dir, members },
    );
  }
  const names = new Set();
  for (const { name } of groups) {
    if (names.has(name))
      throw new Error(`two groups of test files would both be test/.groups/${name}.test.ts`);
    names.add(name);
  }
  return groups.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The file of test/.groups/ ava runs for the group named `name`. */
export function groupFile(name) {
  return path.join(GROUPS_DIR, `${name}.test.ts`);
}

/**
 * Write the file of test/.groups/ of each group of `groups` (a list of its test files, for the
 * reader: ava loads the group's JavaScript from the tree), and remove the ones no group has.
 * Each is written aside and renamed into place: runs of one checkout at once write the same.
 */
export function writeGroupFiles(groups) {
  const wanted = new Set();
  for (const { name, members } of groups) {
    const file = groupFile(name);
    wanted.add(file);
    mkdirSync(path.dirname(file), { recursive: true });
    const list = members.map(({ file }) => `//   ${path.relative(ROOT, file)}\n`).join('');
    const text = `// Made by ava.config.mjs (test/loader/groups.mjs). In a run of the whole suite one test process\n// runs these test files; it loads them from the run's tree, not this file:\n${list}export {};\n`;
    const temp = `${file}.${process.pid}`;
    writeFileSync(temp, text);
    renameSync(temp, file);
  }
  for (const name of readdirSync(GROUPS_DIR, { recursive: true })) {
    const file = path.join(GROUPS_DIR, name);
    if (name.endsWith('.test.ts') && !wanted.has(file)) rmSync(file, { force: true });
  }
}

/**
 * The JavaScript of each group in the tree, by the path `treePath` gives its file: it imports its
 * test files' JavaScript, statically, so that every test is declared in one go.
 */
export function groupModules(groups, treePath) {
  return groups.map(({ name, members }) => {
    const module = treePath(groupFile(name));
    const imports = members.map(({ file }) => {
      const specifier = path
        .relative(path.dirname(module), treePath(file))
        .replaceAll(path.sep, '/');
      return `import ${JSON.stringify(specifier.startsWith('.') ? specifier : `./${specifier}`)};\n`;
    });
    return { module, code: imports.join('') };
  });
}
