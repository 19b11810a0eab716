import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The node flag that runs this repository's TypeScript (test/loader/register.mjs), as the tests
 * themselves run: `spawn(process.execPath, [IMPORT_TYPESCRIPT, 'script.ts'])`.
 */
export const IMPORT_TYPESCRIPT = `--import=${pathToFileURL(path.resolve(import.meta.dirname, '../loader/register.mjs')).href}`;
