import { execFile } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { oncePerRun } from './run-dir.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * This package as `npm run build` builds its library (tsc, then the declaration rewrite; not the
 * CLI bundle), laid out as packed: package.json, README.md, LICENSE and dist/. Built once per
 * test run from the current sources (test/helpers/run-dir.ts): its directory.
 */
export function builtPackage(): Promise<string> {
  return oncePerRun('package', async (dir) => {
    const dist = path.join(dir, 'dist');
    await run(path.join(ROOT, 'node_modules', '.bin', 'tsc'), [
      '-p',
      path.join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      dist,
    ]);
    await run(process.execPath, [path.join(ROOT, 'scripts', 'dts-specifiers.mjs'), dist]);
    for (const file of ['package.json', 'README.md', 'LICENSE']) {
      await copyFile(path.join(ROOT, file), path.join(dir, file));
    }
  });
}
