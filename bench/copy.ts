import { startRegistry } from '../test/helpers/registry.ts';
import {
  countRequests,
  openWindows,
  type Prepared,
  type Scenario,
  type SetupContext,
  type Target,
  type Tool,
} from './lib/scenario.ts';
import { type BenchImage, benchImage, manifestDigest, seededRegistry } from './lib/seed-image.ts';
import { skopeoCopy } from './lib/skopeo.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SOURCE_REPO = 'bench/source';
const TAG = 'v1';

/** The source image of a copy scenario: how many layers of what size, generated from `seed`. */
interface Workload {
  readonly seed: string;
  readonly layers: number;
  readonly layerSize: number;
}

/** Run one copy with `tool` and check the destination tag then points at the source image. */
async function measureCopy(
  tool: Tool,
  ociferry: SetupContext['ociferry'],
  source: string,
  destination: { registry: string; repo: string },
  image: BenchImage,
) {
  const target = `${destination.registry}/${destination.repo}:${TAG}`;
  const measurement =
    tool === 'skopeo'
      ? await skopeoCopy(`docker://${source}`, `docker://${target}`)
      : await ociferry(['copy', source, target, '-q']);
  const copied = await manifestDigest(destination.registry, destination.repo, TAG);
  if (copied !== image.digest) {
    throw new Error(
      `${tool} copy to ${target} left ${copied ?? 'no tag'}, expected ${image.digest}`,
    );
  }
  return measurement;
}

const imageOf = (workload: Workload) =>
  benchImage(workload.seed, workload.layers, workload.layerSize);

/**
 * Copy between two repositories of one registry: every blob can be mounted, so the job is all
 * round trips. Each run gets a newly started registry holding only the source image, so every
 * run is a first copy: skopeo's blob-info cache (which lists the repositories skopeo itself
 * pushed to, and lets it mount from them next time) knows nothing about it.
 */
function sameRegistry(
  name: string,
  title: string,
  workload: Workload,
  targets: readonly Target[],
): Scenario {
  return {
    name,
    title,
    targets,
    async setup({ ociferry }): Promise<Prepared> {
      const image = await imageOf(workload);
      return {
        async run(tool) {
          const registry = await seededRegistry(SOURCE_REPO, TAG, image);
          try {
            const windows = await openWindows([registry]);
            const source = `${registry.host}/${SOURCE_REPO}:${TAG}`;
            const destination = { registry: registry.host, repo: 'bench/copy' };
            const measurement = await measureCopy(tool, ociferry, source, destination, image);
            return { measurement, requests: await countRequests(windows) };
          } finally {
            await registry.stop();
          }
        },
        teardown: async () => {},
      };
    },
  };
}

/**
 * Copy from one registry to another: every byte streams through the client. Each run copies
 * into a newly started, empty registry, so nothing (skopeo's blob-info cache included) can skip
 * an upload.
 */
function crossRegistry(
  name: string,
  title: string,
  workload: Workload,
  targets: readonly Target[],
): Scenario {
  return {
    name,
    title,
    targets,
    async setup({ ociferry }): Promise<Prepared> {
      const image = await imageOf(workload);
      const registry = await seededRegistry(SOURCE_REPO, TAG, image);
      const source = `${registry.host}/${SOURCE_REPO}:${TAG}`;
      return {
        async run(tool) {
          const target = await startRegistry();
          try {
            const windows = await openWindows([registry, target]);
            const destination = { registry: target.host, repo: 'bench/copy' };
            const measurement = await measureCopy(tool, ociferry, source, destination, image);
            return { measurement, requests: await countRequests(windows) };
          } finally {
            await target.stop();
          }
        },
        teardown: () => registry.stop(),
      };
    },
  };
}

/** Issue 5 (a): 40 small layers within one registry; mounts make it latency-bound. */
export const copySame = sameRegistry(
  'copy-same',
  'copy 40 x 256 KiB layers between repositories of one registry (issue 5a)',
  { seed: 'layer-256k', layers: 40, layerSize: 256 * KiB },
  [{ metric: 'wall', maxRatio: 0.4 }],
);

/** Issue 5 (b): 4 x 64 MiB from one registry to another, streamed through the client. */
export const copyCross = crossRegistry(
  'copy-cross',
  'copy a 4 x 64 MiB image to another registry (issue 5b)',
  { seed: 'layer-64m', layers: 4, layerSize: 64 * MiB },
  [
    { metric: 'wall', maxRatio: 1.0 },
    { metric: 'cpu', maxRatio: 1.0 },
    { metric: 'rss', maxMiB: 100 },
  ],
);

/** Issue 5 (c): one 1 GiB blob to another registry: memory must not grow with blob size. */
export const copyLarge = crossRegistry(
  'copy-large',
  'copy a single 1 GiB blob to another registry (issue 5c)',
  { seed: 'layer-1g', layers: 1, layerSize: 1024 * MiB },
  [{ metric: 'rss', maxMiB: 100 }],
);
