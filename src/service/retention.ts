import { setImmediate } from 'node:timers/promises';
import type { CacheConfig, CacheLayer } from '../cache/config.ts';
import { parseCacheConfig } from '../cache/config-parse.ts';
import { type CachePruneCounts, type PruneCacheOptions, pruneCacheConfig } from '../cache/prune.ts';
import type { ServiceBlobStore } from './blob-store.ts';
import { CacheServiceError } from './errors.ts';
import { buildImportDocument, type NamespaceRows } from './import-document.ts';
import { type CacheRecords, chainDigest, DEFAULT_GRACE_MS } from './records.ts';
import { lockNamespace, lockStoredBlobs } from './schema.ts';
import type { SqlDatabase, SqlExecutor } from './sql.ts';

/**
 * What a namespace keeps: the limits of `ociferry cache prune` (src/cache/prune.ts), with its
 * rules. A result stays when it passes every limit given; records stay while a kept result needs
 * them. With none, only what nothing needs goes.
 */
export type RetentionLimits = Pick<
  PruneCacheOptions,
  'keepLast' | 'keepNewer' | 'maxSize' | 'maxConfigSize'
>;

/** Options of {@link CacheRetention}. */
export interface CacheRetentionOptions {
  readonly db: SqlDatabase;
  readonly records: CacheRecords;
  readonly blobs: ServiceBlobStore;
  /** Applied to every namespace by {@link CacheRetention.run}; default none. */
  readonly limits?: RetentionLimits;
  /**
   * How long what was used lately is kept whatever the limits: a blob uploaded or looked up
   * (GetLayerUploadURL said it exists), a record an engine was asked to export a result of.
   * Longer than an export takes, from its first upload to its UpdateCacheLayers. Default 1 h.
   */
  readonly graceMs?: number;
  /** Told of each blob deleted from the store (to forget it was seen there). */
  readonly onDeleted?: (digest: string) => void;
}

/** What pruning one namespace did. */
export interface NamespacePruneResult {
  readonly namespace: string;
  readonly kept: CachePruneCounts;
  /** `bytes`: blobs the namespace's results referenced that no kept result references. */
  readonly dropped: CachePruneCounts;
  /** Results dropped by `maxConfigSize` alone. */
  readonly droppedForConfigSize: number;
  /** With `keepLast`: builds found, and builds still with a kept result. */
  readonly builds?: { readonly found: number; readonly kept: number };
  /** Blobs the namespace let go (no kept result or cache mount names them, unused for the grace period). */
  readonly released: { readonly blobs: number; readonly bytes: number };
}

/** What collecting the blob store did. */
export interface StoreCollectionResult {
  /** Blobs deleted from the store: no namespace held them any more. */
  readonly deleted: number;
  readonly bytesFreed: number;
  /** Blobs the store refused to delete (a registry with deletion disabled); tried again later. */
  readonly failed: number;
}

/** What one {@link CacheRetention.run} did. */
export interface RetentionRunResult {
  readonly namespaces: readonly NamespacePruneResult[];
  readonly store: StoreCollectionResult;
}

/** Blobs collected per transaction. */
const COLLECT_BATCH = 100;

/**
 * Retention of the cache service's namespaces, as `ociferry cache prune` keeps a cache: results
 * the limits keep, the records they need (and records an engine is exporting results of), and
 * the blobs those name; then the store's blobs no namespace holds any more. Safe with several
 * instances on one database and with engines exporting meanwhile:
 *
 * - a namespace is pruned in one transaction holding its lock exclusively, while UpdateCacheRecords
 *   and UpdateCacheLayers hold it shared: no result is added to a record being dropped;
 * - a blob row nothing names goes only once unused for the grace period (uploaded, or said to
 *   exist to an engine that will name it in UpdateCacheLayers; uses are noted under the
 *   namespace's lock too), so an export in flight keeps it, and so does a record an engine was
 *   asked a result of (with the records it links to);
 * - a blob leaves the store only when no namespace has a row for it and no upload of it started
 *   within the grace period, checked and deleted under the blob's lock, which an upload takes too.
 *
 * ImportCache serves only results whose blobs all have rows, and rows are never deleted while a
 * result names them, so a record is never served whose blobs are missing.
 */
export class CacheRetention {
  readonly graceMs: number;
  readonly limits: RetentionLimits;
  readonly #options: CacheRetentionOptions;

  constructor(options: CacheRetentionOptions) {
    this.#options = options;
    this.graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.limits = options.limits ?? {};
  }

  /**
   * RFC 3339: results created before it are not wanted, since the limits would drop them at once
   * (`keepNewer`); undefined without that limit.
   */
  notBefore(now = Date.now()): string | undefined {
    const { keepNewer } = this.limits;
    return keepNewer === undefined ? undefined : new Date(now - keepNewer).toISOString();
  }

  /**
   * Prune namespace `ns` with `limits` (see {@link RetentionLimits}). With `refuseEmpty`, limits
   * that would keep no result of a namespace that has some are refused (CACHE_EMPTY) and nothing
   * changes.
   */
  async pruneNamespace(
    ns: string,
    limits: RetentionLimits,
    options: { refuseEmpty?: boolean; now?: number } = {},
  ): Promise<NamespacePruneResult> {
    const { db, records } = this.#options;
    const result = await db.transaction(async (tx) => {
      await lockNamespace(tx, ns, 'exclusive');
      const rows = await records.namespaceRows(ns, tx);
      const plan = Object.values(limits).some((limit) => limit !== undefined)
        ? await planWithLimits(ns, rows, limits, options.now)
        : planGarbage(rows);
      if (options.refuseEmpty && plan.kept.results === 0 && plan.dropped.results > 0) {
        throw new CacheServiceError(
          'CACHE_EMPTY',
          `the limits keep none of the ${plan.dropped.results} results of this namespace; nothing was pruned`,
        );
      }
      const fresh = await tx.query<{ digest: string }>(
        `select digest from cache_record_uses
         where ns = $1 and touched_at > now() - $2 * interval '1 millisecond'`,
        [ns, this.graceMs],
      );
      const keep = reached(rows, [...plan.roots, ...fresh.map((row) => row.digest)]);
      const droppedRecords = rows.records.filter((digest) => !keep.has(digest));
      await dropEntries(tx, ns, droppedRecords, plan.droppedResults);
      const released = await tx.query<{ digest: string; size: string | number }>(
        `delete from cache_blobs b
         where b.ns = $1
           and not exists (select 1 from cache_blob_uses u where u.ns = b.ns
             and u.digest = b.digest and u.touched_at > now() - $2 * interval '1 millisecond')
           and not exists (select 1 from unnest($3::text[]) k(digest) where k.digest = b.digest)
           and not exists (select 1 from cache_mounts m where m.ns = b.ns and m.digest = b.digest)
         returning b.digest, b.size`,
        [ns, this.graceMs, plan.keptBlobs],
      );
      // Uses older than the grace period keep nothing any more.
      for (const table of ['cache_record_uses', 'cache_blob_uses']) {
        await tx.query(
          `delete from ${table}
           where ns = $1 and touched_at <= now() - $2 * interval '1 millisecond'`,
          [ns, this.graceMs],
        );
      }
      return { plan, keptRecords: keep.size, droppedRecords: droppedRecords.length, released };
    });
    const { plan, released } = result;
    records.forgetBlobs(
      ns,
      released.map((row) => row.digest),
    );
    return {
      namespace: ns,
      kept: { ...plan.kept, records: result.keptRecords },
      dropped: { ...plan.dropped, records: result.droppedRecords },
      droppedForConfigSize: plan.droppedForConfigSize,
      ...(plan.builds ? { builds: plan.builds } : {}),
      released: {
        blobs: released.length,
        bytes: released.reduce((sum, row) => sum + Number(row.size), 0),
      },
    };
  }

  /**
   * Delete from the store the blobs no namespace holds, whose last upload started more than the
   * grace period ago. Each batch is checked again and deleted under the blobs' locks.
   */
  async collectStore(): Promise<StoreCollectionResult> {
    const { db, blobs, onDeleted } = this.#options;
    const orphans = `select s.digest from cache_stored s
      where s.touched_at < now() - $1 * interval '1 millisecond'
        and not exists (select 1 from cache_blobs b where b.digest = s.digest)`;
    const candidates = (await db.query<{ digest: string }>(orphans, [this.graceMs])).map(
      (row) => row.digest,
    );
    let deleted = 0;
    let bytesFreed = 0;
    let failed = 0;
    for (let i = 0; i < candidates.length; i += COLLECT_BATCH) {
      const batch = candidates.slice(i, i + COLLECT_BATCH);
      await db.transaction(async (tx) => {
        await lockStoredBlobs(tx, batch);
        const still = await tx.query<{ digest: string }>(
          `${orphans} and s.digest = any($2::text[])`,
          [this.graceMs, batch],
        );
        const gone: string[] = [];
        for (const { digest } of still) {
          try {
            const size = (await blobs.info(digest))?.size ?? 0;
            if (await blobs.delete(digest)) {
              deleted++;
              bytesFreed += size;
            }
            gone.push(digest);
            onDeleted?.(digest);
          } catch {
            failed++;
          }
        }
        await tx.query('delete from cache_stored where digest = any($1::text[])', [gone]);
      });
    }
    return { deleted, bytesFreed, failed };
  }

  /** Prune every namespace with {@link limits}, then collect the store. */
  async run(): Promise<RetentionRunResult> {
    const rows = await this.#options.db.query<{ ns: string }>(
      `select ns from cache_records union select ns from cache_blobs
       union select ns from cache_mounts union select ns from cache_record_uses
       union select ns from cache_blob_uses order by ns`,
    );
    const namespaces: NamespacePruneResult[] = [];
    for (const { ns } of rows) namespaces.push(await this.pruneNamespace(ns, this.limits));
    return { namespaces, store: await this.collectStore() };
  }

  /**
   * Note that an upload of `digest` starts (or has just ended): the store keeps the blob for the
   * grace period even while no namespace holds it. Waits while a collection deletes it.
   */
  async noteUpload(digest: string): Promise<void> {
    await this.#options.db.transaction(async (tx) => {
      await lockStoredBlobs(tx, [digest]);
      await tx.query(
        `insert into cache_stored (digest) values ($1)
         on conflict (digest) do update set touched_at = now()`,
        [digest],
      );
    });
  }
}

/** What a namespace keeps and drops, before the records in use are added. */
interface Plan {
  /** Records that kept results need: they, and what they link to, stay. */
  readonly roots: readonly string[];
  /** Results to delete, as `record chain`. */
  readonly droppedResults: readonly string[];
  /** Blobs the kept results name. */
  readonly keptBlobs: readonly string[];
  /** Counts; `records` is filled in once the records in use are added. */
  readonly kept: CachePruneCounts;
  readonly dropped: CachePruneCounts;
  readonly droppedForConfigSize: number;
  readonly builds?: { readonly found: number; readonly kept: number };
}

/** Results ImportCache serves: those whose blobs all have rows. */
function servedResults(rows: NamespaceRows): NamespaceRows['results'] {
  const blobs = new Set(rows.blobs);
  return rows.results.filter(([, chain]) => chain.every((layer) => blobs.has(layer.digest)));
}

/**
 * Without limits every result stays, and only what nothing needs goes: computed on the rows,
 * with no config built (what the periodic run does by default, in O(records + links + layers)).
 */
function planGarbage(rows: NamespaceRows): Plan {
  const results = servedResults(rows);
  const layers = new Set<string>();
  const sizes = new Map<string, number>();
  for (const [, chain] of results) {
    let parent = '';
    for (const layer of chain) {
      parent = `${parent} ${layer.digest}`;
      layers.add(parent);
      sizes.set(layer.digest, layer.size);
    }
  }
  let bytes = 0;
  for (const size of sizes.values()) bytes += size;
  return {
    roots: [...new Set(results.map(([record]) => record))],
    droppedResults: [],
    keptBlobs: [...sizes.keys()],
    kept: { records: 0, results: results.length, layers: layers.size, bytes },
    dropped: { records: 0, results: 0, layers: 0, bytes: 0 },
    droppedForConfigSize: 0,
  };
}

/**
 * With limits: the namespace's ImportCache document, pruned by `pruneCacheConfig` with the
 * rules of `ociferry cache prune` (blob sizes from the layers' annotations). The steps give the
 * event loop back between them: the service keeps answering while a large namespace is pruned.
 */
async function planWithLimits(
  ns: string,
  rows: NamespaceRows,
  limits: RetentionLimits,
  now: number | undefined,
): Promise<Plan> {
  const document = buildImportDocument(rows);
  await setImmediate();
  const { config } = await parseCacheConfig(document, {
    limit: Number.POSITIVE_INFINITY,
    origin: `namespace ${ns}`,
  });
  await setImmediate();
  const sizes = new Map<string, number | undefined>();
  for (const layer of config.layers) sizes.set(layer.blob, layer.annotations?.size);
  const pruned = pruneCacheConfig(config, { ...limits, now, blobSize: (blob) => sizes.get(blob) });
  await setImmediate();
  const keptResults = new Set(resultKeys(pruned.config));
  return {
    roots: pruned.config.records.map((record) => record.digest),
    droppedResults: resultKeys(config).filter((key) => !keptResults.has(key)),
    keptBlobs: [...new Set(pruned.config.layers.map((layer) => layer.blob))],
    kept: pruned.kept,
    dropped: pruned.dropped,
    droppedForConfigSize: pruned.droppedForConfigSize,
    ...(pruned.builds ? { builds: pruned.builds } : {}),
  };
}

/** The records `roots` reach through the links of `rows` (target to source), themselves included. */
function reached(rows: NamespaceRows, roots: readonly string[]): Set<string> {
  const sources = new Map<string, string[]>();
  rows.targets.forEach((target, i) => {
    const source = rows.sources[i] as string;
    const list = sources.get(target);
    if (list) list.push(source);
    else sources.set(target, [source]);
  });
  const known = new Set(rows.records);
  const kept = new Set<string>();
  const stack = roots.filter((digest) => known.has(digest));
  for (let at = stack.pop(); at !== undefined; at = stack.pop()) {
    if (kept.has(at)) continue;
    kept.add(at);
    for (const source of sources.get(at) ?? []) if (known.has(source)) stack.push(source);
  }
  return kept;
}

/** `record chain` of every result of `config`, as `cache_results` keys them. */
function resultKeys(config: CacheConfig): string[] {
  const { layers } = config;
  return config.records.flatMap((record) =>
    record.results.map((result) => {
      const blobs: string[] = [];
      for (let i = result.layer; i !== -1; i = (layers[i] as CacheLayer).parent) {
        blobs.push((layers[i] as CacheLayer).blob);
      }
      return `${record.digest} ${chainDigest(blobs.reverse())}`;
    }),
  );
}

/** Delete the results `results` (`record chain`), then the records `records` and their links. */
async function dropEntries(
  tx: SqlExecutor,
  ns: string,
  records: readonly string[],
  results: readonly string[],
): Promise<void> {
  if (results.length > 0) {
    const pairs = results.map((key) => key.split(' '));
    await tx.query(
      `delete from cache_results c using unnest($2::text[], $3::text[]) d(record, chain)
       where c.ns = $1 and c.record = d.record and c.chain = d.chain`,
      [ns, pairs.map((p) => p[0]), pairs.map((p) => p[1])],
    );
  }
  if (records.length === 0) return;
  for (const end of ['source', 'target']) {
    await tx.query(
      `delete from cache_links l using unnest($2::text[]) d(digest)
       where l.ns = $1 and l.${end} = d.digest`,
      [ns, records],
    );
  }
  await tx.query(
    `delete from cache_records r using unnest($2::text[]) d(digest)
     where r.ns = $1 and r.digest = d.digest`,
    [ns, records],
  );
}
