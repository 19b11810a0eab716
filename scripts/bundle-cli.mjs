// Bundle the CLI (src/cli/main.ts) with its dependencies into one module, dist/cli/main.js, so
// `ociferry` starts by reading one file instead of some 400: 0.2 s instead of 0.35-0.45 s and
// 64 MiB instead of 75 MiB for an `inspect` here. 'undici' resolves to the part of it that
// ociferry uses (undici-cli.cjs): another 30-50 ms and 9 MiB. The library (dist/index.js, from
// tsc) stays unbundled. `node scripts/bundle-cli.mjs [OUTFILE]`, default dist/cli/main.js (the
// bin); the bundle reads its version from `../../package.json` relative to OUTFILE.
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The esbuild plugin that points `import ... from 'undici'` at undici-cli.cjs. */
const undiciSubset = {
  name: 'undici-subset',
  setup(builder) {
    const subset = fileURLToPath(new URL('undici-cli.cjs', import.meta.url));
    builder.onResolve({ filter: /^undici$/ }, () => ({ path: subset }));
  },
};

await build({
  entryPoints: [`${ROOT}src/cli/main.ts`],
  outfile: process.argv[2] ?? `${ROOT}dist/cli/main.js`,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  plugins: [undiciSubset],
  // Bundled CommonJS dependencies (undici) call require() for Node's built-in modules.
  banner: {
    js: "import { createRequire as __ociferryRequire } from 'node:module'; const require = __ociferryRequire(import.meta.url);",
  },
});
