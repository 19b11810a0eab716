// Bundle the CLI for its bin: dist/cli/ociferry.cjs is src/cli/entry.ts with every dependency in
// one CommonJS module, which the bin (dist/cli/bin.js, from src/cli/bin.ts) runs with V8's code
// cache (see src/cli/code-cache.ts). One file instead of some 400 modules starts in 0.2 s instead
// of 0.35-0.45 s; 'undici' resolves to the part of it that ociferry uses (undici-cli.cjs): another
// 30-50 ms and 9 MiB. The library (dist/index.js, from tsc) stays unbundled.
// `node scripts/bundle-cli.mjs [DIR]`, default dist/cli; the bundle reads its version from
// `DIR/../../package.json`.
import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const outdir = process.argv[2] ?? `${ROOT}dist/cli`;

/** The esbuild plugin that points `import ... from 'undici'` at undici-cli.cjs. */
const undiciSubset = {
  name: 'undici-subset',
  setup(builder) {
    const subset = fileURLToPath(new URL('undici-cli.cjs', import.meta.url));
    builder.onResolve({ filter: /^undici$/ }, () => ({ path: subset }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  allowOverwrite: true,
};

await build({
  ...common,
  entryPoints: [`${ROOT}src/cli/entry.ts`],
  outfile: `${outdir}/ociferry.cjs`,
  format: 'cjs',
  plugins: [undiciSubset],
  // The cache service's drivers load their own files (PGlite its WebAssembly) from their packages.
  external: ['@electric-sql/pglite', 'pg', 'prom-client'],
  define: { 'import.meta.url': '__ociferryModuleUrl' },
  banner: { js: "const __ociferryModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
});

await build({
  ...common,
  entryPoints: [`${ROOT}src/cli/bin.ts`],
  outfile: `${outdir}/bin.js`,
  format: 'esm',
});
chmodSync(`${outdir}/bin.js`, 0o755);
