import type { CacheSource } from './source.ts';

/**
 * For an inline cache, the image history's `created_by` of each layer, by blob digest: the
 * Dockerfile instruction that made it. Empty for other forms, which carry no history. Costs no
 * request when the image configs were read to open the cache (the usual case).
 */
export async function layerHistory(
  source: CacheSource,
  options: { signal?: AbortSignal } = {},
): Promise<Map<string, string>> {
  const history = new Map<string, string>();
  if (source.format !== 'inline') return history;
  const { remote } = source;
  const images = remote.kind === 'image' ? [remote] : await remote.images(options);
  for (const image of images) {
    const { layers } = image.manifest;
    if (layers.length === 0) continue;
    const config = await image.config(options);
    const entries = (config.history ?? []).filter((entry) => entry.empty_layer !== true);
    layers.forEach((layer, i) => {
      const createdBy = entries[i]?.created_by;
      if (typeof createdBy === 'string' && !history.has(layer.digest)) {
        history.set(layer.digest, createdBy);
      }
    });
  }
  return history;
}
