import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { oncePerRun } from './run-dir.ts';

/**
 * The node flag that runs this repository's TypeScript (test/loader/register.mjs), as the tests
 * themselves run: `spawn(process.execPath, [IMPORT_TYPESCRIPT, 'script.ts'])`.
 */
export const IMPORT_TYPESCRIPT = `--import=${pathToFileURL(path.resolve(import.meta.dirname, '../loader/register.mjs')).href}`;

/**
 * TypeScript scripts of this repository bundled by esbuild, once per test run under `name`
 * (test/helpers/run-dir.ts): each into one ES module with what it imports, which plain node runs
 * (`spawn(process.execPath, [bundle])`) without the loader's hooks thread and its load of each
 * module, about 0.1 s of CPU less per process than {@link IMPORT_TYPESCRIPT}. The scripts must
 * not depend on where their modules are (`import.meta`). Resolves to the bundles, in the order of
 * `scripts`, whose base names must differ.
 */
export async function bundledScripts(name: string, scripts: readonly string[]): Promise<string[]> {
  const entry = (script: string) => path.basename(script, '.ts');
  const dir = await oncePerRun(name, async (dir) => {
    const { build } = await import('esbuild');
    await build({
      entryPoints: Object.fromEntries(scripts.map((script) => [entry(script), script])),
      outdir: dir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      logLevel: 'warning',
    });
  });
  return scripts.map((script) => path.join(dir, `${entry(script)}.mjs`));
}
