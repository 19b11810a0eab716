// Rewrite the relative `.ts` module specifiers tsc leaves in declaration files to `.js`:
// `rewriteRelativeImportExtensions` rewrites them in the emitted JavaScript only, and TypeScript
// before 5.0 cannot resolve `import … from './x.ts'` in a package's `.d.ts` files.
// `node scripts/dts-specifiers.mjs [DIR]`, default dist.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = path.resolve(process.argv[2] ?? path.join(ROOT, 'dist'));

/** `from './x.ts'`, `import('../y.ts')`, `declare module './z.ts'`: relative specifiers only. */
const SPECIFIER =
  /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bmodule\s+)(['"])(\.{1,2}\/[^'"\n]*?)(?<!\.d)\.ts\2/g;

for (const entry of await readdir(dir, { recursive: true })) {
  if (!entry.endsWith('.d.ts')) continue;
  const file = path.join(dir, entry);
  const text = await readFile(file, 'utf8');
  const rewritten = text.replace(
    SPECIFIER,
    (_, lead, quote, stem) => `${lead}${quote}${stem}.js${quote}`,
  );
  if (rewritten !== text) await writeFile(file, rewritten);
}
