// The module hooks of register.mjs, run on Node's loader thread.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
/** What the output depends on besides the file: esbuild's version and the options. */
const SALT = `${require('esbuild/package.json').version}\0${JSON.stringify(OPTIONS)}`;

let esbuild;
let cacheMade = false;

/** The JavaScript of `file`, whose TypeScript is `source`: kept from an earlier run, or made now. */
async function javascript(file, source) {
  const key = createHash('sha256').update(`${SALT}\0${file}\0${source}`).digest('hex');
  const kept = path.join(CACHE_DIR, `${key}.mjs`);
  try {
    return readFileSync(kept, 'utf8');
  } catch {
    // Not made yet.
  }
  esbuild ??= await import('esbuild');
  const { code } = await esbuild.transform(source, { ...OPTIONS, sourcefile: file });
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

/**
 * Make the JavaScript of every file of `files` not kept yet, in this one process: test processes
 * started at the same time would otherwise each make it again (on a fresh checkout, a run spent
 * a minute of CPU so).
 */
export async function prepare(files) {
  await Promise.all(files.map((file) => javascript(file, readFileSync(file, 'utf8'))));
}

/** Node's `load` hook: `.ts` files as ES modules, everything else as Node loads it. */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const source = await javascript(file, readFileSync(file, 'utf8'));
  return { format: 'module', source, shortCircuit: true };
}
