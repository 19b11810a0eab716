import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import {
  groupFile,
  groupModules,
  needsOwnProcess,
  planGroups,
  // @ts-expect-error: plain JavaScript without declarations.
} from './groups.mjs';
// @ts-expect-error: plain JavaScript without declarations.
import { treePath } from './tree.mjs';

const ROOT = path.resolve(import.meta.dirname, '../..');
const file = (name: string) => path.join(ROOT, 'test', `${name}.test.ts`);
const plain = 'import test from "ava";\ntest("x", (t) => t.pass());\n';

interface Group {
  name: string;
  members: { file: string; titlePrefix?: string }[];
}

test('the test files of a directory share a group, each with its name before its titles', (t) => {
  const groups: Group[] = planGroups(
    [
      { file: file('util/limiter'), code: plain },
      { file: file('util/settle'), code: plain },
      { file: file('registry/auth/scope'), code: plain },
      { file: file('registry/auth/token'), code: plain },
    ],
    () => false,
  );
  t.deepEqual(groups, [
    {
      name: 'registry/auth',
      members: [
        { file: file('registry/auth/scope'), titlePrefix: 'scope › ' },
        { file: file('registry/auth/token'), titlePrefix: 'token › ' },
      ],
    },
    {
      name: 'util',
      members: [
        { file: file('util/limiter'), titlePrefix: 'limiter › ' },
        { file: file('util/settle'), titlePrefix: 'settle › ' },
      ],
    },
  ]);
  // ava gives the titles of test/.groups/util.test.ts the prefix `util`, as it gives those of
  // test/util/limiter.test.ts `util › limiter`.
  t.is(groupFile('util'), path.join(ROOT, 'test', '.groups', 'util.test.ts'));
});

test('a slow file, the only one left of its directory and one of test/ itself run alone, named by their paths', (t) => {
  const groups: Group[] = planGroups(
    [
      { file: file('cache/buildkit-oracle'), code: plain },
      { file: file('cache/config'), code: plain },
      { file: file('readme'), code: plain },
      { file: file('errors'), code: plain },
    ],
    (name: string) => name.endsWith('buildkit-oracle.test.ts'),
  );
  t.deepEqual(groups, [
    { name: 'cache/buildkit-oracle', members: [{ file: file('cache/buildkit-oracle') }] },
    { name: 'cache/config', members: [{ file: file('cache/config') }] },
    { name: 'errors', members: [{ file: file('errors') }] },
    { name: 'readme', members: [{ file: file('readme') }] },
  ]);
});

test('a file that changes its process, awaits before declaring its tests or hooks each test needs a process of its own', (t) => {
  for (const code of [
    'process.env.OCI_REGISTRY_BIN = path;',
    'process.env["A"] = "1";',
    'delete process.env[variable];',
    'process.on("warning", onWarning);',
    'process.once("SIGTERM", stop);',
    'process.chdir(dir);',
    'process.exitCode = 1;',
    'const dockerd = await startBuildkit();',
    'await setup();',
    'const VERSION = JSON.parse(await readFile(file, "utf8")).version;',
    'test.beforeEach((t) => { t.context.dir = makeDir(); });',
    'test.afterEach.always(() => cleanUp());',
  ]) {
    t.true(needsOwnProcess(`${plain}${code}\n`), code);
  }
  for (const code of [
    'const load = async (name) => (await parse(name)).config;',
    'if (process.env.CI === "1") t.log("ci");',
    'test("x", async (t) => {\n  await work();\n  process.env.X = "1";\n});',
  ]) {
    t.is(needsOwnProcess(`${plain}${code}\n`), code.includes('process.env.X ='), code);
  }
  const groups: Group[] = planGroups(
    [
      { file: file('layout/copy'), code: `${plain}process.on("warning", () => {});\n` },
      { file: file('layout/blobs'), code: plain },
      { file: file('layout/tags'), code: plain },
    ],
    () => false,
  );
  t.deepEqual(
    groups.map(({ name, members }) => [name, members.length]),
    [
      ['layout', 2],
      ['layout/copy', 1],
    ],
  );
});

test('two groups that would have one file are refused', (t) => {
  t.throws(
    () =>
      planGroups(
        [
          { file: file('cli/progress'), code: plain },
          { file: file('cli/progress/plain'), code: plain },
          { file: file('cli/progress/tty'), code: plain },
        ],
        (name: string) => name.endsWith('cli/progress.test.ts'),
      ),
    { message: /test\/\.groups\/cli\/progress\.test\.ts/ },
  );
});

test("a group's JavaScript imports its files' JavaScript from the tree, in one go", (t) => {
  const tree = '/run/tree';
  const inTree = (name: string): string => treePath(tree, name);
  const [group, alone] = groupModules(
    [
      {
        name: 'util',
        members: [{ file: file('util/limiter') }, { file: file('util/settle') }],
      },
      { name: 'cache/copy', members: [{ file: file('cache/copy') }] },
    ],
    inTree,
  );
  t.deepEqual(group, {
    module: '/run/tree/test/.groups/util.test.mjs',
    code: 'import "../util/limiter.test.mjs";\nimport "../util/settle.test.mjs";\n',
  });
  t.deepEqual(alone, {
    module: '/run/tree/test/.groups/cache/copy.test.mjs',
    code: 'import "../../cache/copy.test.mjs";\n',
  });
});

test('planned from their JavaScript in the tree, real test files each run once, the ones that change their process alone', async (t) => {
  const tree = process.env.OCIFERRY_TEST_TREE ?? '';
  const files = [
    file('layout/copy'),
    file('helpers/registry'),
    file('util/limiter'),
    file('util/settle'),
  ];
  const testFiles = await Promise.all(
    files.map(async (name) => ({
      file: name,
      code: await readFile(treePath(tree, name), 'utf8'),
    })),
  );
  const groups: Group[] = planGroups(testFiles, () => false);
  t.deepEqual(
    groups.flatMap(({ members }) => members.map((member) => member.file)).sort(),
    [...files].sort(),
  );
  t.deepEqual(
    groups.map(({ name, members }) => [name, members.length]),
    [
      ['helpers/registry', 1],
      ['layout/copy', 1],
      ['util', 2],
    ],
  );
});
