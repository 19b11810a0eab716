import { contextOf } from '../remote/ociferry-context.ts';
import type { CacheRecord } from './config.ts';
import { CacheGraph, type GraphResult } from './graph.ts';
import { type OpenCacheSourceOptions, openCacheSource } from './import.ts';
import { oversizedConfigProblem } from './importable.ts';
import { layerHistory } from './layer-history.ts';
import { buildOrder, finalRecords } from './order.ts';
import {
  type CacheFormat,
  type CacheSource,
  type CacheSourceInput,
  isCacheSource,
} from './source.ts';
import { stepLayers } from './step-layers.ts';

/** Where a cache's config is and how big it is. */
export interface ListedConfig {
  /** image-manifest, index, manifest-list (Docker), or inline (in image configs). */
  readonly form: CacheFormat;
  /** Media type of the manifest that carries the cache. */
  readonly manifestMediaType: string;
  /** The cache config blob, or for an inline cache the image config (the first, for an index). */
  readonly digest: string;
  /** Bytes of the cache config, or for an inline cache of the image configs carrying it. */
  readonly size: number;
}

/** One input link of a record. */
export interface ListedInput {
  readonly input: number;
  /** The record it comes from: digest and index in `records` order of the config. */
  readonly from: string;
  readonly fromRecord: number;
  readonly selector?: string;
}

/** One result of a record: what BuildKit loads for it. */
export interface ListedResult {
  readonly createdAt: string;
  /** Layer blobs it loads, bottom-up. */
  readonly layers: readonly string[];
  /** Sum of the sizes of those blobs the manifest lists. */
  readonly bytes: number;
  /** Blobs the manifest does not list: BuildKit drops such a result on import. */
  readonly unlisted: readonly string[];
  /** True for an explicit layer list (`chains`, newer inline caches), false for a parent chain. */
  readonly chained: boolean;
}

/** One record of the cache. */
export interface ListedRecord {
  readonly digest: string;
  /** Index of the record in the config. */
  readonly record: number;
  /** A source (base image, local files) or content checksum: a record without inputs. */
  readonly source: boolean;
  readonly inputs: readonly ListedInput[];
  readonly results: readonly ListedResult[];
  /** The layer the step made (see `stepLayers`): its newest result's top layer, or inferred. */
  readonly layer?: string;
  /** The image history's `created_by` of that layer (inline caches). */
  readonly createdBy?: string;
}

/** Result of {@link listCache}; the `cache ls --json` object. */
export interface CacheListing {
  /** The cache as a `--from` value. */
  readonly cache: string;
  readonly config: ListedConfig;
  /** Records in build order: every record after the records its inputs come from. */
  readonly records: readonly ListedRecord[];
  /** Distinct layer blobs the manifest lists, and their total size. */
  readonly layers: number;
  readonly bytes: number;
  /** HTTP exchanges made (token requests included). */
  readonly requests: number;
  /** What would stop BuildKit importing the cache (a config over its 1 MiB cap). */
  readonly warnings: readonly string[];
}

/**
 * The records of a BuildKit cache in build order, with their input links (from which record,
 * with which selector) and their results (time, layers, bytes), and the form and size of the
 * config. Reads the manifest and the config (for an inline cache, the image configs), never a
 * layer.
 */
export async function listCache(
  source: CacheSourceInput,
  options: OpenCacheSourceOptions = {},
): Promise<CacheListing> {
  const client = options.client ?? contextOf(options).client;
  const before = client.requestCount;
  const opened = isCacheSource(source)
    ? source
    : await openCacheSource(source, { ...options, client });
  const graph = CacheGraph.from(opened.config);
  const history = await layerHistory(opened, { signal: options.signal });
  const { records } = opened.config;
  const layers = stepLayers(graph);
  const listed = buildOrder(records, finalRecords(records)).map((index) =>
    listRecord(opened, graph, index, layers, history),
  );
  let bytes = 0;
  for (const descriptor of opened.blobs.values()) bytes += descriptor.size;
  return {
    cache: opened.name,
    config: await configFacts(opened, options.signal),
    records: listed,
    layers: opened.blobs.size,
    bytes,
    requests: client.requestCount - before,
    warnings: [oversizedConfigProblem(opened)].filter((w): w is string => w !== undefined),
  };
}

function listRecord(
  source: CacheSource,
  graph: CacheGraph,
  index: number,
  layers: ReadonlyMap<number, string>,
  history: ReadonlyMap<string, string>,
): ListedRecord {
  const { records } = source.config;
  const record = records[index] as CacheRecord;
  const inputs = record.inputs.flatMap((group, input) =>
    group.map((link): ListedInput => {
      const from = (records[link.link] as CacheRecord).digest;
      const base = { input, from, fromRecord: link.link };
      return link.selector ? { ...base, selector: link.selector } : base;
    }),
  );
  const results = graph.resultsOf(index).map((result) => listResult(source, result));
  const layer = layers.get(index);
  const createdBy = layer === undefined ? undefined : history.get(layer);
  return {
    digest: record.digest,
    record: index,
    source: record.inputs.length === 0,
    inputs,
    results,
    ...(layer === undefined ? {} : { layer }),
    ...(createdBy === undefined ? {} : { createdBy }),
  };
}

function listResult(source: CacheSource, result: GraphResult): ListedResult {
  const layers = result.layers.map((layer) => layer.blob);
  let bytes = 0;
  const unlisted: string[] = [];
  for (const blob of layers) {
    const descriptor = source.blobs.get(blob);
    if (descriptor) bytes += descriptor.size;
    else unlisted.push(blob);
  }
  return { createdAt: result.createdAt, layers, bytes, unlisted, chained: result.chained };
}

async function configFacts(source: CacheSource, signal?: AbortSignal): Promise<ListedConfig> {
  const manifestMediaType = source.remote.mediaType;
  if (source.configDescriptor) {
    const { digest, size } = source.configDescriptor;
    return { form: source.format, manifestMediaType, digest, size };
  }
  const { remote } = source;
  const images = remote.kind === 'image' ? [remote] : await remote.images({ signal });
  const configs = images
    .filter((image) => image.manifest.layers.length > 0)
    .map((image) => image.manifest.config);
  return {
    form: source.format,
    manifestMediaType,
    digest: configs[0]?.digest ?? '',
    size: configs.reduce((sum, config) => sum + config.size, 0),
  };
}
