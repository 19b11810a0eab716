import { Counter, Histogram, Registry } from 'prom-client';

/** The service's Prometheus metrics, on a registry of its own (no global state). */
export interface ServiceMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'status'>;
  readonly duration: Histogram<'route'>;
  readonly urlsMinted: Counter<'op'>;
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly retentionRuns: Counter<'outcome'>;
  readonly resultsPruned: Counter;
  readonly blobsDeleted: Counter;
  readonly blobBytesDeleted: Counter;
}

/** A fresh set of metrics. */
export function createServiceMetrics(): ServiceMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'ociferry_cache_requests_total',
      help: 'Requests answered, by route and status',
      labelNames: ['route', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'ociferry_cache_request_seconds',
      help: 'Request duration, by route',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    }),
    urlsMinted: new Counter({
      name: 'ociferry_cache_urls_minted_total',
      help: 'Blob URLs minted, by operation',
      labelNames: ['op'],
      registers,
    }),
    bytesIn: new Counter({
      name: 'ociferry_cache_blob_bytes_received_total',
      help: 'Blob bytes committed from uploads',
      registers,
    }),
    bytesOut: new Counter({
      name: 'ociferry_cache_blob_bytes_sent_total',
      help: 'Blob bytes sent to downloads',
      registers,
    }),
    retentionRuns: new Counter({
      name: 'ociferry_cache_retention_runs_total',
      help: 'Retention runs over every namespace, by outcome (ok, failed)',
      labelNames: ['outcome'],
      registers,
    }),
    resultsPruned: new Counter({
      name: 'ociferry_cache_results_pruned_total',
      help: 'Results dropped by the retention and by prune calls',
      registers,
    }),
    blobsDeleted: new Counter({
      name: 'ociferry_cache_blobs_deleted_total',
      help: 'Blobs deleted from the store, held by no namespace any more',
      registers,
    }),
    blobBytesDeleted: new Counter({
      name: 'ociferry_cache_blob_bytes_deleted_total',
      help: 'Bytes of the blobs deleted from the store',
      registers,
    }),
  };
}
