import { createHash } from 'node:crypto';
import type { CacheConfig, CacheLayer, CacheRecord } from '../cache/config.ts';
import { ZERO_TIME } from '../cache/go-time.ts';
import {
  type ExportRecord,
  type LayerDescriptor,
  UNCOMPRESSED_ANNOTATION,
  type UpdateLayersRequest,
  type UpdateRecordsRequest,
} from './api.ts';
import { CacheServiceError } from './errors.ts';
import type { SqlDatabase, SqlExecutor } from './sql.ts';

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

interface ResultRow extends Record<string, unknown> {
  record: string;
  layers: string;
  created_at: string;
}

/**
 * The cache metadata of every namespace in SQL: records, links, results (layer chains), committed
 * blobs and cache mounts. Every write is an upsert or one transaction, so concurrent engines lose
 * no update, and a failed call leaves nothing behind.
 */
export class CacheRecords {
  readonly #db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.#db = db;
  }

  /**
   * Add the engine's records and links; answer the records it holds a result for while the
   * namespace has none yet (one result id each), as the service wants those exported.
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
      return tx.query<{ record: string }>(
        'select distinct record from cache_results where ns = $1 and record = any($2::text[])',
        [ns, digests],
      );
    });
    const held = new Set(have.map((row) => row.record));
    const wanted: ExportRecord[] = [];
    const seen = new Set<string>();
    for (const record of request.records) {
      const first = record.results?.[0];
      if (!first || held.has(record.digest) || seen.has(record.digest)) continue;
      seen.add(record.digest);
      wanted.push({ digest: record.digest, cacheRefID: first.id });
    }
    return wanted;
  }

  /**
   * Add results (layer chains) to known records. Every blob must be committed in the namespace
   * with the reported size (BLOB_UNKNOWN otherwise) and every record known (RECORD_UNKNOWN);
   * nothing is applied unless all are. Returns how many results were new.
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
      }));
      const added = await tx.query(
        `insert into cache_results (ns, record, chain, layers, created_at)
         select $1, * from unnest($2::text[], $3::text[], $4::text[], $5::text[])
         on conflict do nothing returning record`,
        [
          ns,
          rows.map((r) => r.record),
          rows.map((r) => r.chain),
          rows.map((r) => r.layers),
          rows.map((r) => r.createdAt),
        ],
      );
      return added.length;
    });
  }

  /**
   * The namespace as a cacheconfig v0: every record and link, and the results whose blobs are all
   * committed (a result with a missing blob is left out, never served).
   */
  async importCache(ns: string): Promise<CacheConfig> {
    const [records, links, results, blobs] = await Promise.all([
      this.#db.query<{ digest: string }>(
        'select digest from cache_records where ns = $1 order by digest',
        [ns],
      ),
      this.#db.query<{ source: string; target: string; input: number; selector: string }>(
        'select source, target, input, selector from cache_links where ns = $1',
        [ns],
      ),
      this.#db.query<ResultRow>(
        'select record, layers, created_at from cache_results where ns = $1 order by record, chain',
        [ns],
      ),
      this.#db.query<{ digest: string }>('select digest from cache_blobs where ns = $1', [ns]),
    ]);
    return buildConfig(records, links, results, new Set(blobs.map((b) => b.digest)));
  }

  /** Note that the blob store committed `digest` for `ns` (idempotent). */
  async addBlob(ns: string, blob: StoredBlob): Promise<void> {
    await this.#db.query(
      `insert into cache_blobs (ns, digest, size) values ($1, $2, $3)
       on conflict (ns, digest) do update set size = excluded.size`,
      [ns, blob.digest, blob.size],
    );
  }

  /** The blob's row in `ns`; undefined when the namespace does not hold it. */
  async blob(ns: string, digest: string): Promise<StoredBlob | undefined> {
    const rows = await this.#db.query<{ size: string | number }>(
      'select size from cache_blobs where ns = $1 and digest = $2',
      [ns, digest],
    );
    return rows[0] ? { digest, size: Number(rows[0].size) } : undefined;
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
  recordRows: readonly { digest: string }[],
  linkRows: readonly { source: string; target: string; input: number; selector: string }[],
  resultRows: readonly ResultRow[],
  blobs: ReadonlySet<string>,
): CacheConfig {
  const recordIndex = new Map(recordRows.map((row, i) => [row.digest, i]));
  const layers: CacheLayer[] = [];
  const layerIndex = new Map<string, number>(); // `${parent} ${digest}` -> index
  const resultsOf = new Map<string, { layer: number; createdAt: string }[]>();
  for (const row of resultRows) {
    const chain = JSON.parse(row.layers) as StoredLayer[];
    if (!chain.every((layer) => blobs.has(layer.digest))) continue;
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
    const list = resultsOf.get(row.record) ?? [];
    list.push({ layer: parent, createdAt: row.created_at });
    resultsOf.set(row.record, list);
  }
  const inputsOf = new Map<string, { selector?: string; link: number }[][]>();
  for (const link of linkRows) {
    const source = recordIndex.get(link.source);
    if (source === undefined || !recordIndex.has(link.target)) continue;
    const groups = inputsOf.get(link.target) ?? [];
    while (groups.length <= link.input) groups.push([]);
    groups[link.input]?.push(
      link.selector ? { selector: link.selector, link: source } : { link: source },
    );
    inputsOf.set(link.target, groups);
  }
  const records: CacheRecord[] = recordRows.map((row) => ({
    digest: row.digest,
    results: resultsOf.get(row.digest) ?? [],
    chains: [],
    // An input group left empty (a link never reported) would make the config invalid.
    inputs: (inputsOf.get(row.digest) ?? []).filter((group) => group.length > 0),
  }));
  return { layers, records };
}
