import { createHash } from 'node:crypto';
import type { CacheConfig, CacheLayer, CacheRecord } from '../cache/config.ts';
import { compareGoTimes, ZERO_TIME } from '../cache/go-time.ts';
import {
  type ExportRecord,
  type LayerDescriptor,
  UNCOMPRESSED_ANNOTATION,
  type UpdateLayersRequest,
  type UpdateRecordsRequest,
} from './api.ts';
import { BlobPresence } from './blob-presence.ts';
import { CacheServiceError } from './errors.ts';
import type { SqlDatabase, SqlExecutor } from './sql.ts';
import { wantedExports } from './wanted.ts';

/** A stored blob row: the blob store committed it for this namespace. */
export interface StoredBlob {
  readonly digest: string;
  readonly size: number;
}

/** A stored cache mount. */
export interface StoredMount {
  readonly name: string;
  readonly digest: string;
  readonly size: number;
}

/** A link as {@link CacheRecords.importCache} reads it: source, target, input, selector. */
type LinkRow = [string, string, number, string];
/** A result as {@link CacheRecords.importCache} reads it: record, layer chain, creation time. */
type ResultRow = [string, StoredLayer[], string];

/**
 * The cache metadata of every namespace in SQL: records, links, results (layer chains), committed
 * blobs and cache mounts. Every write is an upsert or one transaction, so concurrent engines lose
 * no update, and a failed call leaves nothing behind.
 */
export class CacheRecords {
  readonly #db: SqlDatabase;
  /** Blob rows seen, by `ns digest`: rows are never deleted, so a row seen stays true. */
  readonly #blobs = new BlobPresence();

  constructor(db: SqlDatabase) {
    this.#db = db;
  }

  /**
   * Add the engine's records and links; answer the records whose result the service wants
   * exported (one result id each): those the namespace has no result of, or only older ones
   * (see {@link wantedExports}).
   */
  async updateRecords(ns: string, request: UpdateRecordsRequest): Promise<ExportRecord[]> {
    const digests = [...new Set(request.records.map((r) => r.digest))];
    const links = request.links ?? [];
    const linked = links.flatMap((l) => [l.source, l.target]);
    const all = [...new Set([...digests, ...linked])];
    const have = await this.#db.transaction(async (tx) => {
      await insertRecords(tx, ns, all);
      if (links.length > 0) {
        await tx.query(
          `insert into cache_links (ns, source, target, input, selector)
           select $1, * from unnest($2::text[], $3::text[], $4::int[], $5::text[])
           on conflict do nothing`,
          [
            ns,
            links.map((l) => l.source),
            links.map((l) => l.target),
            links.map((l) => l.input),
            links.map((l) => l.selector ?? ''),
          ],
        );
      }
      return tx.query<{ record: string; created_at: string }>(
        'select record, created_at from cache_results where ns = $1 and record = any($2::text[])',
        [ns, digests],
      );
    });
    const held = new Map<string, string[]>();
    for (const row of have) {
      const times = held.get(row.record);
      if (times) times.push(row.created_at);
      else held.set(row.record, [row.created_at]);
    }
    return wantedExports(request.records, held);
  }

  /**
   * Add results (layer chains) to known records. Every blob must be committed in the namespace
   * with the reported size (BLOB_UNKNOWN otherwise) and every record known (RECORD_UNKNOWN);
   * nothing is applied unless all are. Returns how many results were new, or renewed: a result
   * held already whose reported `createdAt` is later takes it.
   */
  async updateLayers(ns: string, request: UpdateLayersRequest): Promise<number> {
    const blobs = [...new Set(request.results.flatMap((r) => r.layers.map((l) => l.digest)))];
    const records = [...new Set(request.results.map((r) => r.recordDigest))];
    return this.#db.transaction(async (tx) => {
      const stored = await tx.query<{ digest: string; size: string | number }>(
        'select digest, size from cache_blobs where ns = $1 and digest = any($2::text[])',
        [ns, blobs],
      );
      const sizes = new Map(stored.map((row) => [row.digest, Number(row.size)]));
      for (const layer of request.results.flatMap((r) => r.layers)) {
        const size = sizes.get(layer.digest);
        if (size === undefined) {
          throw new CacheServiceError(
            'BLOB_UNKNOWN',
            `blob ${layer.digest} is not in this namespace; upload it first`,
          );
        }
        if (size !== layer.size) {
          throw new CacheServiceError(
            'BAD_REQUEST',
            `blob ${layer.digest} has ${size} bytes, not the ${layer.size} reported`,
          );
        }
      }
      const known = await tx.query<{ digest: string }>(
        'select digest from cache_records where ns = $1 and digest = any($2::text[])',
        [ns, records],
      );
      const knownSet = new Set(known.map((row) => row.digest));
      const unknown = records.find((digest) => !knownSet.has(digest));
      if (unknown) {
        throw new CacheServiceError(
          'RECORD_UNKNOWN',
          `record ${unknown} was never reported; report it with UpdateCacheRecords first`,
        );
      }
      const rows = request.results.map((result) => ({
        record: result.recordDigest,
        // The chain's digest, not its text: a key of a long chain outgrows a btree entry.
        chain: createHash('sha256')
          .update(result.layers.map((l) => l.digest).join(','))
          .digest('hex'),
        layers: JSON.stringify(result.layers.map(storedLayer)),
        createdAt: result.createdAt ?? new Date().toISOString(),
        dated: result.createdAt !== undefined,
      }));
      const added = await tx.query<{ record: string; chain: string }>(
        `insert into cache_results (ns, record, chain, layers, created_at)
         select $1, * from unnest($2::text[], $3::text[], $4::text[], $5::text[])
         on conflict do nothing returning record, chain`,
        [
          ns,
          rows.map((r) => r.record),
          rows.map((r) => r.chain),
          rows.map((r) => r.layers),
          rows.map((r) => r.createdAt),
        ],
      );
      const inserted = new Set(added.map((row) => `${row.record} ${row.chain}`));
      const held = rows.filter((r) => r.dated && !inserted.has(`${r.record} ${r.chain}`));
      return added.length + (await renewResults(tx, ns, held));
    });
  }

  /**
   * The namespace as a cacheconfig v0: every record and link, and the results whose blobs are all
   * committed (a result with a missing blob is left out, never served). One statement per table,
   * each aggregated by the database into one JSON text: a namespace of 100k records costs four
   * rows, not 200k.
   */
  async importCache(ns: string): Promise<CacheConfig> {
    const [records, links, results, blobs] = await Promise.all([
      this.#aggregate(ns, 'cache_records', 'digest'),
      this.#aggregate(ns, 'cache_links', 'json_build_array(source, target, input, selector)'),
      this.#aggregate(
        ns,
        'cache_results',
        'json_build_array(record, layers::json, created_at)',
        'record, chain',
      ),
      this.#aggregate(ns, 'cache_blobs', 'digest'),
    ]);
    // Sorted here: an ordered aggregate sorts in the database at twice the cost.
    return buildConfig(
      (records as string[]).sort(),
      links as LinkRow[],
      results as ResultRow[],
      new Set(blobs as string[]),
    );
  }

  /** `value` of every row of `table` in `ns`, as one JSON array the database builds. */
  async #aggregate(ns: string, table: string, value: string, order?: string): Promise<unknown[]> {
    const rows = await this.#db.query<{ list: string | null }>(
      `select json_agg(${value}${order ? ` order by ${order}` : ''})::text as list
       from ${table} where ns = $1`,
      [ns],
    );
    return JSON.parse(rows[0]?.list ?? '[]') as unknown[];
  }

  /** Note that the blob store committed `digest` for `ns` (idempotent). */
  async addBlob(ns: string, blob: StoredBlob): Promise<void> {
    await this.#db.query(
      `insert into cache_blobs (ns, digest, size) values ($1, $2, $3)
       on conflict (ns, digest) do update set size = excluded.size`,
      [ns, blob.digest, blob.size],
    );
    this.#blobs.add(`${ns} ${blob.digest}`, blob.size);
  }

  /** The blob's row in `ns`; undefined when the namespace does not hold it. */
  async blob(ns: string, digest: string): Promise<StoredBlob | undefined> {
    const size = await this.#blobs.through(`${ns} ${digest}`, async () => {
      const rows = await this.#db.query<{ size: string | number }>(
        'select size from cache_blobs where ns = $1 and digest = $2',
        [ns, digest],
      );
      return rows[0] ? Number(rows[0].size) : undefined;
    });
    return size === undefined ? undefined : { digest, size };
  }

  /** Point cache mount `name` of `ns` at a committed blob (last writer wins). */
  async setMount(ns: string, mount: StoredMount): Promise<void> {
    await this.#db.query(
      `insert into cache_mounts (ns, name, digest, size) values ($1, $2, $3, $4)
       on conflict (ns, name) do update set digest = excluded.digest, size = excluded.size`,
      [ns, mount.name, mount.digest, mount.size],
    );
  }

  /** The namespace's cache mounts, by name. */
  async mounts(ns: string): Promise<StoredMount[]> {
    const rows = await this.#db.query<{ name: string; digest: string; size: string | number }>(
      'select name, digest, size from cache_mounts where ns = $1 order by name',
      [ns],
    );
    return rows.map((row) => ({ name: row.name, digest: row.digest, size: Number(row.size) }));
  }
}

/**
 * Give results the namespace holds already the later `createdAt` an engine reports for the same
 * layers (a step run again with the same output): BuildKit loads a key's newest result, and the
 * service asks again for a result until it holds one as new. Returns how many were renewed.
 */
async function renewResults(
  tx: SqlExecutor,
  ns: string,
  rows: readonly { record: string; chain: string; createdAt: string }[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const newest = new Map<string, (typeof rows)[number]>();
  for (const row of rows) {
    const key = `${row.record} ${row.chain}`;
    const other = newest.get(key);
    if (!other || compareGoTimes(row.createdAt, other.createdAt) > 0) newest.set(key, row);
  }
  const stored = await tx.query<{ record: string; chain: string; created_at: string }>(
    `select c.record, c.chain, c.created_at from cache_results c
     join unnest($2::text[], $3::text[]) u(record, chain) on c.record = u.record and c.chain = u.chain
     where c.ns = $1`,
    [ns, [...newest.values()].map((r) => r.record), [...newest.values()].map((r) => r.chain)],
  );
  const renewed = stored.flatMap((row) => {
    const reported = newest.get(`${row.record} ${row.chain}`);
    return reported && compareGoTimes(reported.createdAt, row.created_at) > 0 ? [reported] : [];
  });
  if (renewed.length === 0) return 0;
  await tx.query(
    `update cache_results c set created_at = u.created_at
     from unnest($2::text[], $3::text[], $4::text[]) u(record, chain, created_at)
     where c.ns = $1 and c.record = u.record and c.chain = u.chain`,
    [
      ns,
      renewed.map((r) => r.record),
      renewed.map((r) => r.chain),
      renewed.map((r) => r.createdAt),
    ],
  );
  return renewed.length;
}

async function insertRecords(tx: SqlExecutor, ns: string, digests: string[]): Promise<void> {
  if (digests.length === 0) return;
  await tx.query(
    `insert into cache_records (ns, digest) select $1, unnest($2::text[])
     on conflict do nothing`,
    [ns, digests],
  );
}

/** What a result row keeps of a layer: the facts ImportCache annotates it with. */
interface StoredLayer {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly diffID?: string;
}

function storedLayer(layer: LayerDescriptor): StoredLayer {
  const diffID = layer.annotations?.[UNCOMPRESSED_ANNOTATION];
  return { digest: layer.digest, mediaType: layer.mediaType, size: layer.size, diffID };
}

function buildConfig(
  recordDigests: readonly string[],
  linkRows: readonly LinkRow[],
  resultRows: readonly ResultRow[],
  blobs: ReadonlySet<string>,
): CacheConfig {
  const recordIndex = new Map<string, number>();
  for (let i = 0; i < recordDigests.length; i++) recordIndex.set(recordDigests[i] as string, i);
  const layers: CacheLayer[] = [];
  const layerIndex = new Map<string, number>(); // `${parent} ${digest}` -> index
  const resultsOf: ({ layer: number; createdAt: string }[] | undefined)[] = [];
  for (const [record, chain, createdAt] of resultRows) {
    const at = recordIndex.get(record);
    if (at === undefined || !chain.every((layer) => blobs.has(layer.digest))) continue;
    let parent = -1;
    for (const layer of chain) {
      const key = `${parent} ${layer.digest}`;
      let index = layerIndex.get(key);
      if (index === undefined) {
        index = layers.length;
        layers.push({
          blob: layer.digest,
          parent,
          annotations: {
            mediaType: layer.mediaType,
            diffID: layer.diffID,
            size: layer.size,
            createdAt: ZERO_TIME,
          },
        });
        layerIndex.set(key, index);
      }
      parent = index;
    }
    const list = resultsOf[at];
    if (list) list.push({ layer: parent, createdAt });
    else resultsOf[at] = [{ layer: parent, createdAt }];
  }
  const inputsOf: ({ selector?: string; link: number }[][] | undefined)[] = [];
  for (const [sourceDigest, targetDigest, input, selector] of linkRows) {
    const source = recordIndex.get(sourceDigest);
    const target = recordIndex.get(targetDigest);
    if (source === undefined || target === undefined) continue;
    let groups = inputsOf[target];
    if (!groups) {
      groups = [];
      inputsOf[target] = groups;
    }
    while (groups.length <= input) groups.push([]);
    groups[input]?.push(selector ? { selector, link: source } : { link: source });
  }
  const records: CacheRecord[] = recordDigests.map((digest, i) => {
    const groups = inputsOf[i];
    return {
      digest,
      results: resultsOf[i] ?? [],
      chains: [],
      // Groups stay at the positions reported, empty ones included: BuildKit matches links by
      // input index, so dropping an empty group would move the next one to another input.
      inputs: groups ?? [],
    };
  });
  return { layers, records };
}
