import type { CacheSource } from './source.ts';

/**
 * The largest cache config BuildKit imports: its remote-cache importer reads the config blob with a
 * hard-coded 1 MiB cap (moby/buildkit#3719, #4916) and goes on without the cache when it is bigger.
 */
export const BUILDKIT_CONFIG_LIMIT = 1 << 20;

/**
 * Why BuildKit would refuse to import `source` for its config's size, or undefined when it would
 * not. Only caches with a config blob are judged: an inline cache lives in image configs.
 */
export function oversizedConfigProblem(source: CacheSource): string | undefined {
  const size = source.configDescriptor?.size;
  if (size === undefined || size <= BUILDKIT_CONFIG_LIMIT) return undefined;
  return `${source.name} has a cache config of ${size} bytes, over the ${BUILDKIT_CONFIG_LIMIT} bytes BuildKit imports ("blob ... is too large"); rewrite it with --max-config-size 1MiB (cache copy, merge or prune)`;
}
