// The JavaScript of this repository's TypeScript: esbuild strips the types of each file, and the
// output is kept on disk (node_modules/.cache/ociferry-ts), keyed by the file's path and content.
// Test processes load it from the run's tree (tree.mjs); processes the tests start with
// register.mjs load it through a module hook (hooks.mjs).
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(fileURLToPath(import.meta.url), '../../..');
const CACHE_DIR = path.join(ROOT, 'node_modules', '.cache', 'ociferry-ts');

/** How esbuild turns a file into JavaScript: tsconfig.json's options that change the output. */
const OPTIONS = {
  loader: 'ts',
  format: 'esm',
  target: 'node20',
  sourcemap: 'inline',
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
};
/**
 * A kept file no file of the repository needs now stays this long after it was made: other
 * checkouts sharing node_modules, and edits undone, may need it again.
 */
const KEEP_UNUSED_MS = 24 * 3600 * 1000;

/**
 * What the output depends on besides the file: esbuild's version, the options, and that
 * `import.meta` is replaced by the file's own location (see {@link make}).
 */
const SALT = `${require('esbuild/package.json').version}\0${JSON.stringify(OPTIONS)}\0import.meta`;

let esbuild;
let cacheMade = false;

/** The JavaScript of `file`, whose TypeScript is `source`: kept from an earlier run, or made now. */
export async function javascript(file, source) {
  const kept = keptPath(file, source);
  try {
    return readFileSync(kept, 'utf8');
  } catch {
    return make(file, source, kept);
  }
}

/**
 * Make the JavaScript of `file`, whose TypeScript is `source`, and keep it at `kept`. Its
 * `import.meta.url`, `dirname` and `filename` are those of `file` wherever the JavaScript is
 * loaded from: files find what lies beside them (fixtures, package.json) from the run's tree too.
 */
async function make(file, source, kept) {
  esbuild ??= await import('esbuild');
  const { code } = await esbuild.transform(source, {
    ...OPTIONS,
    sourcefile: file,
    define: {
      'import.meta.url': JSON.stringify(pathToFileURL(file).href),
      'import.meta.dirname': JSON.stringify(path.dirname(file)),
      'import.meta.filename': JSON.stringify(file),
    },
  });
  try {
    if (!cacheMade) mkdirSync(CACHE_DIR, { recursive: true });
    cacheMade = true;
    // Written aside, then renamed: a process reading it meanwhile sees all of it or nothing.
    const temp = `${kept}.${process.pid}-${Math.random().toString(36).slice(2)}`;
    writeFileSync(temp, code);
    renameSync(temp, kept);
  } catch {
    // Unwritable: the next process transforms the file again, nothing worse.
  }
  return code;
}

/** Where the JavaScript of `file`, whose TypeScript is `source`, is kept. */
export function keptPath(file, source) {
  const key = createHash('sha256').update(`${SALT}\0${file}\0${source}`).digest('hex');
  return path.join(CACHE_DIR, `${key}.mjs`);
}

/**
 * Make the JavaScript of every file of `files` not kept yet, in this one process: processes
 * started at the same time would otherwise each make it again (on a fresh checkout, a run spent
 * a minute of CPU so). Then remove what was kept for files as they no longer are, once it is
 * older than a day (each edit of a file leaves one behind), and temporary files left by killed
 * processes. Resolves to each file with where its JavaScript is kept.
 */
export async function prepare(files) {
  const all = files.map((file) => {
    const source = readFileSync(file, 'utf8');
    return { file, source, kept: keptPath(file, source) };
  });
  await Promise.all(
    all
      .filter(({ kept }) => !existsSync(kept))
      .map(({ file, source, kept }) => make(file, source, kept)),
  );
  const needed = new Set(all.map(({ kept }) => path.basename(kept)));
  const now = Date.now();
  let names;
  try {
    names = readdirSync(CACHE_DIR);
  } catch {
    return all;
  }
  for (const name of names) {
    if (needed.has(name)) continue;
    const file = path.join(CACHE_DIR, name);
    try {
      if (now - statSync(file).mtimeMs > KEEP_UNUSED_MS) rmSync(file, { force: true });
    } catch {
      // Removed by another run meanwhile.
    }
  }
  return all;
}
