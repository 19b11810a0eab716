// The module hooks of register.mjs, run on Node's loader thread.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { javascript } from './javascript.mjs';

/** Node's `load` hook: `.ts` files as ES modules, everything else as Node loads it. */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const source = await javascript(file, readFileSync(file, 'utf8'));
  return { format: 'module', source, shortCircuit: true };
}
