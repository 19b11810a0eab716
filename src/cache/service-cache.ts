import type { BlobStats } from '../copy/index.ts';
import { type Descriptor, OCI_LAYER_GZIP } from '../oci/index.ts';
import type { RemoteContext } from '../remote/context.ts';
import { MultiProvider } from '../remote/multi-provider.ts';
import { contextOf } from '../remote/ociferry-context.ts';
import { type Remote, remoteFromBytes } from '../remote/remote-index.ts';
import { UNCOMPRESSED_ANNOTATION } from '../service/api.ts';
import { CacheServiceClient } from '../service/client.ts';
import { mapLimit } from '../util/limiter.ts';
import { BytesProvider } from './bytes-provider.ts';
import {
  type CacheConfig,
  type CacheLayer,
  type CacheRecord,
  DEFAULT_CACHE_CONFIG_LIMIT,
  markValidatedCacheConfig,
} from './config.ts';
import { parseCacheConfig } from './config-parse.ts';
import { configBlob, withoutLayerAnnotations } from './derived-source.ts';
import { cacheManifest } from './export.ts';
import type { OpenCacheSourceOptions, WrappedConfig } from './import.ts';
import { importCacheOf } from './import-cache.ts';
import { type ServiceCache, serviceToken } from './options.ts';
import type { CacheSource } from './source.ts';

/** The client of a service cache, its token read from `token-env` (or `token`) now. */
export function serviceCacheClient(cache: ServiceCache): CacheServiceClient {
  return new CacheServiceClient({ url: cache.url, token: serviceToken(cache) });
}

/**
 * True when two service caches are one namespace: the same service (URL) and tokens bound to the
 * same namespace (the same token, or GetConfig names the same namespace for both).
 */
export async function sameServiceNamespace(
  a: ServiceCache,
  b: ServiceCache,
  options: { signal?: AbortSignal } = {},
): Promise<boolean> {
  const base = (url: string) => new URL(url).href.replace(/\/+$/, '');
  if (base(a.url) !== base(b.url)) return false;
  if (serviceToken(a) === serviceToken(b)) return true;
  const [one, two] = await Promise.all(
    [a, b].map((cache) => serviceCacheClient(cache).getConfig(options)),
  );
  return one?.namespace === two?.namespace;
}

/**
 * A service cache opened as a cache manifest: ImportCache's document, its layer annotations moved
 * into the descriptors of an image manifest made here, is the config blob (served from memory,
 * parsed once). Layer
 * reads go through the client's provider, which mints one download URL per read, right before it;
 * sizes are known from the document, so hit checks and `exists` answers mint none.
 */
export async function findServiceCache(
  cache: ServiceCache,
  name: string,
  options: OpenCacheSourceOptions,
): Promise<{ remote: Remote; wrapped: WrappedConfig }> {
  const { signal } = options;
  const client = serviceCacheClient(cache);
  const limit = options.configSizeLimit ?? DEFAULT_CACHE_CONFIG_LIMIT;
  const bytes = await client.importCacheBytes({ limit, signal });
  const parsed = await parseCacheConfig(bytes, { limit, origin: name, signal });
  const layers = annotatedLayers(parsed.config);
  // The manifest's descriptors carry the layers' facts: the config is written as BuildKit's
  // registry exporter writes it, so a copy to a registry holds what BuildKit would push.
  const stripped = withoutLayerAnnotations(parsed.config);
  markValidatedCacheConfig(stripped);
  const blob = configBlob(stripped);
  const config = blob.descriptor;
  // Later loads of this config (loadCacheSource) find it parsed.
  await (options.cache ?? importCacheOf(options.context)).config(config.digest, async () => ({
    config: stripped,
    digest: config.digest,
    size: config.size,
  }));
  const provider = new MultiProvider({
    fallback: client.provider(layers, { context: options.context }),
  }).add(config.digest, new BytesProvider(`ImportCache of ${name}`).add(config.digest, blob.bytes));
  const manifest = cacheManifest('image-manifest', config, layers);
  const library = contextOf(options);
  const context: RemoteContext = {
    ref: name,
    provider,
    manifests: {
      fetchManifest: async () => {
        throw new Error(`${name} has no manifests but the one made from its ImportCache`);
      },
    },
    blobLocations: options.blobLocations ?? options.sources ?? library.blobLocations,
    configSizeLimit: limit,
    library,
  };
  return {
    remote: remoteFromBytes(manifest.descriptor, manifest.bytes, context),
    wrapped: { format: 'image-manifest', config, layers },
  };
}

/**
 * The layer descriptors a manifest-less config's annotations give, one per blob in first-seen
 * order; a layer without a size is left out (the results over it then cannot hit).
 */
function annotatedLayers(config: CacheConfig): Descriptor[] {
  const layers = new Map<string, Descriptor>();
  for (const layer of config.layers) {
    const size = layer.annotations?.size;
    if (layers.has(layer.blob) || size === undefined) continue;
    const diffID = layer.annotations?.diffID;
    layers.set(layer.blob, {
      mediaType: layer.annotations?.mediaType ?? OCI_LAYER_GZIP,
      digest: layer.blob,
      size,
      ...(diffID ? { annotations: { [UNCOMPRESSED_ANNOTATION]: diffID } } : {}),
    });
  }
  return [...layers.values()];
}

/** Records and links per UpdateCacheRecords of an export (well under 1 MiB of JSON). */
const BATCH = 2000;
/** Results per UpdateCacheLayers (each lists its whole chain: a few MiB at most). */
const RESULT_BATCH = 100;

/** What an export to a service did. */
export interface ServiceExportResult {
  /** Records (distinct keys) reported with UpdateCacheRecords. */
  readonly records: number;
  /** Records whose results the service asked for. */
  readonly wanted: number;
  /** Results the service added (UpdateCacheLayers). */
  readonly results: number;
  readonly blobs: BlobStats;
}

/** Options of {@link exportToService}. */
export interface ExportToServiceOptions {
  /** Blob uploads at once, default 8. */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * Export `config` (a cache whose blobs `source` lists and reads) to a service namespace as an
 * engine does: UpdateCacheRecords with every record, its results (ids and times) and its links;
 * then, for the records the service wants (no result there, or only older ones), each layer blob
 * of their results through a URL minted right before its upload (none read when the service
 * already holds it; read again, with a fresh URL, when an upload fails in a way worth retrying);
 * then UpdateCacheLayers. Metadata goes in batches (2,000 records and links, 100 results per
 * request).
 */
export async function exportToService(
  source: CacheSource,
  config: CacheConfig,
  target: ServiceCache,
  options: ExportToServiceOptions = {},
): Promise<ServiceExportResult> {
  const { signal } = options;
  const client = serviceCacheClient(target);
  const provider = source.remote.context.provider;
  const byKey = resultsByKey(config);
  const links = config.records.flatMap((record, target) =>
    record.inputs.flatMap((group, input) =>
      group.map((link) => ({
        source: (config.records[link.link] as CacheRecord).digest,
        target: (config.records[target] as CacheRecord).digest,
        input,
        ...(link.selector ? { selector: link.selector } : {}),
      })),
    ),
  );
  // With their times: the service asks for a result newer than those it holds.
  const records = [...byKey].map(([digest, results]) => ({
    digest,
    results: results.map((result, i) => ({ id: `result-${i}`, createdAt: result.createdAt })),
  }));
  // In batches, so that each request stays far below the service's 16 MiB body limit.
  const wanted = [];
  for (let i = 0; i < Math.max(records.length, links.length); i += BATCH) {
    const batch = { records: records.slice(i, i + BATCH), links: links.slice(i, i + BATCH) };
    wanted.push(...(await client.updateCacheRecords(batch, { signal })));
  }
  const exported = wanted.flatMap(({ digest }) =>
    (byKey.get(digest) ?? []).map((result) => ({
      recordDigest: digest,
      createdAt: result.createdAt,
      layers: result.blobs.map((blob) => source.blobs.get(blob) as Descriptor),
    })),
  );
  const blobs: BlobStats = {
    mounted: 0,
    skipped: 0,
    uploaded: 0,
    bytesUploaded: 0,
    bytesDownloaded: 0,
  };
  const unique = new Map(exported.flatMap((r) => r.layers).map((layer) => [layer.digest, layer]));
  await mapLimit(
    [...unique.values()],
    options.concurrency ?? 8,
    async (layer, _, inner) => {
      // Opened only when the service lacks the blob, and again if an attempt fails.
      const open = () => {
        if (!provider.isLocal?.(layer.digest)) blobs.bytesDownloaded += layer.size;
        return provider.fetch(layer, { signal: inner });
      };
      const { uploaded } = await client.uploadLayer(layer, open, { signal: inner });
      if (!uploaded) {
        blobs.skipped++;
        return;
      }
      blobs.uploaded++;
      blobs.bytesUploaded += layer.size;
    },
    signal,
  );
  let results = 0;
  for (let i = 0; i < exported.length; i += RESULT_BATCH) {
    const batch = exported
      .slice(i, i + RESULT_BATCH)
      .map(({ recordDigest, createdAt, layers }) => ({
        recordDigest,
        createdAt,
        layers: layers.map(({ mediaType, digest, size, annotations }) => ({
          mediaType,
          digest,
          size,
          ...(annotations ? { annotations } : {}),
        })),
      }));
    results += await client.updateCacheLayers({ results: batch }, { signal });
  }
  return { records: byKey.size, wanted: wanted.length, results, blobs };
}

/** Each key's results as blob chains (bottom-up), records sharing a key merged. */
function resultsByKey(config: CacheConfig): Map<string, { blobs: string[]; createdAt: string }[]> {
  const { layers } = config;
  const chainOf = (top: number): string[] => {
    const blobs: string[] = [];
    for (let i = top; i !== -1; i = (layers[i] as CacheLayer).parent) {
      blobs.push((layers[i] as CacheLayer).blob);
    }
    return blobs.reverse();
  };
  const byKey = new Map<string, { blobs: string[]; createdAt: string }[]>();
  for (const record of config.records) {
    const results = byKey.get(record.digest) ?? [];
    for (const result of record.results) {
      results.push({ blobs: chainOf(result.layer), createdAt: result.createdAt });
    }
    for (const chain of record.chains) {
      const blobs = chain.layers.map((layer) => (layers[layer] as CacheLayer).blob);
      results.push({ blobs, createdAt: chain.createdAt });
    }
    byKey.set(record.digest, results);
  }
  return byKey;
}
