import type { Descriptor, ImageConfig } from '../oci/index.ts';
import type { RemoteImage } from '../remote/remote-image.ts';
import type { Remote } from '../remote/remote-index.ts';
import { type CacheConfig, type CacheLayer, markValidatedCacheConfig } from './config.ts';
import { locateConfigError } from './config-load.ts';
import { type ParsedCacheConfig, parseCacheConfig } from './config-parse.ts';
import { CacheConfigError } from './errors.ts';
import { normalizeGoTime, ZERO_TIME } from './go-time.ts';
import type { CacheImportCache } from './import-cache.ts';

/** Key of the inline cache in an image config: base64 of the JSON `records` list. */
export const INLINE_CACHE_KEY = 'moby.buildkit.cache.v0';
/** Layer descriptor annotation carrying the diffID (uncompressed digest). */
export const UNCOMPRESSED_ANNOTATION = 'containerd.io/uncompressed';
/** Layer descriptor annotation carrying the creation time. */
const CREATED_AT_ANNOTATION = 'buildkit/createdat';

/** Options of {@link readInlineCache}. */
export interface ReadInlineCacheOptions {
  cache: CacheImportCache;
  /** Size cap of the cache records plus the layer list, in JSON bytes. */
  limit: number;
  signal?: AbortSignal;
}

/** An inline cache turned into a regular config over the images' own layers. */
export interface InlineCache {
  readonly config: CacheConfig;
  /** Layer descriptors, annotated with diffID and creation time as BuildKit's importer does. */
  readonly layers: readonly Descriptor[];
}

/**
 * The cache BuildKit's image exporter writes into image configs (`--cache-to type=inline`), read
 * as BuildKit's importer does: per image, the layers form one parent chain (parent = i-1), diffIDs
 * come from `rootfs.diff_ids`, creation times from the non-empty `history` entries. For an index,
 * every image's cache is merged into one config. Costs one image config request per image not
 * seen before; none of the images carrying a cache gives undefined.
 */
export async function readInlineCache(
  remote: Remote,
  options: ReadInlineCacheOptions,
): Promise<InlineCache | undefined> {
  const { signal } = options;
  const images = remote.kind === 'image' ? [remote] : await remote.images({ signal });
  const parts: InlineCache[] = [];
  for (const image of images) {
    if (image.manifest.layers.length === 0) continue;
    // Kept by manifest digest: an image seen before costs no image config request.
    const key = `inline:${image.digest}`;
    let parsed = options.cache.get(key);
    if (!parsed) {
      const imageConfig = await image.config({ signal });
      const value = imageConfig[INLINE_CACHE_KEY];
      if (value === undefined || value === null) continue;
      parsed = await options.cache.config(key, () => inlineConfig(image, imageConfig, options));
    }
    parts.push({ config: parsed.config, layers: annotatedLayers(image, parsed.config) });
  }
  if (parts.length === 0) return undefined;
  return {
    config: mergeConfigs(parts.map((part) => part.config)),
    layers: parts.flatMap((part) => part.layers),
  };
}

/** One image's inline records with its layer chain, parsed and validated as a whole config. */
async function inlineConfig(
  image: RemoteImage,
  imageConfig: ImageConfig,
  options: ReadInlineCacheOptions,
): Promise<ParsedCacheConfig> {
  const where = `inline cache of ${image.ref} (${image.digest})`;
  const value = imageConfig[INLINE_CACHE_KEY];
  if (typeof value !== 'string') {
    throw new CacheConfigError(`${where}: ${INLINE_CACHE_KEY} must be a base64 string`);
  }
  const { layers } = image.manifest;
  const diffIds = imageConfig.rootfs.diff_ids;
  if (diffIds.length !== layers.length) {
    throw new CacheConfigError(
      `${where}: the image config lists ${diffIds.length} diff_ids for ${layers.length} layers`,
    );
  }
  const created = createdTimes(imageConfig);
  const layerList = layers.map((layer, i) => {
    const annotations = `{"diffID":${JSON.stringify(diffIds[i])},"createdAt":${JSON.stringify(created[i] ?? ZERO_TIME)}}`;
    return `{"blob":${JSON.stringify(layer.digest)},"parent":${i - 1},"annotations":${annotations}}`;
  });
  const bytes = Buffer.concat([
    Buffer.from(`{"layers":[${layerList.join(',')}],"records":`),
    Buffer.from(value, 'base64'),
    Buffer.from('}'),
  ]);
  try {
    return await parseCacheConfig(bytes, { limit: options.limit, signal: options.signal });
  } catch (error) {
    throw locateConfigError(error, where);
  }
}

/** Creation times of the layers: `history` entries that are not `empty_layer`, in order. */
function createdTimes(imageConfig: ImageConfig): string[] {
  const times: string[] = [];
  for (const entry of imageConfig.history ?? []) {
    if (entry.empty_layer === true) continue;
    const created = typeof entry.created === 'string' ? normalizeGoTime(entry.created) : undefined;
    times.push(created ?? ZERO_TIME);
  }
  return times;
}

/** The image's layer descriptors with the diffID and creation time the config layers carry. */
function annotatedLayers(image: RemoteImage, config: CacheConfig): Descriptor[] {
  return image.manifest.layers.map((layer, i) => {
    const facts = (config.layers[i] as CacheLayer).annotations;
    const annotations: Record<string, string> = { ...layer.annotations };
    if (facts?.diffID) annotations[UNCOMPRESSED_ANNOTATION] = facts.diffID;
    if (facts && facts.createdAt !== ZERO_TIME)
      annotations[CREATED_AT_ANNOTATION] = facts.createdAt;
    return { ...layer, annotations };
  });
}

/** Several valid configs side by side in one (indexes shifted), valid by construction. */
function mergeConfigs(configs: readonly CacheConfig[]): CacheConfig {
  if (configs.length === 1) return configs[0] as CacheConfig;
  const merged: { layers: CacheLayer[]; records: CacheConfig['records'][number][] } = {
    layers: [],
    records: [],
  };
  for (const config of configs) {
    const layerBase = merged.layers.length;
    const recordBase = merged.records.length;
    for (const layer of config.layers) {
      merged.layers.push(
        layer.parent === -1 ? layer : { ...layer, parent: layer.parent + layerBase },
      );
    }
    for (const record of config.records) {
      merged.records.push({
        ...record,
        results: record.results.map((r) => ({ ...r, layer: r.layer + layerBase })),
        chains: record.chains.map((c) => ({ ...c, layers: c.layers.map((l) => l + layerBase) })),
        inputs: record.inputs.map((group) =>
          group.map((input) => ({ ...input, link: input.link + recordBase })),
        ),
      });
    }
  }
  markValidatedCacheConfig(merged);
  return merged;
}
