import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countRequests, openWindows, type Scenario } from './lib/scenario.ts';
import { type BenchImage, benchImage, seededRegistry } from './lib/seed-image.ts';
import { skopeoCopy } from './lib/skopeo.ts';

const MiB = 1024 * 1024;
const REPO = 'bench/pull';
const TAG = 'v1';
const REF_NAME = 'org.opencontainers.image.ref.name';

/** Check that `dir` is a layout whose `tag` is `image`, with every blob at its full size. */
async function verifyLayout(dir: string, image: BenchImage): Promise<void> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.[REF_NAME] === TAG);
  if (entry?.digest !== image.digest) {
    throw new Error(
      `${dir}: tag ${TAG} is ${entry?.digest ?? 'missing'}, expected ${image.digest}`,
    );
  }
  for (const layer of image.layers) {
    const size = (await stat(join(dir, 'blobs', ...layer.digest.split(':')))).size;
    if (size !== layer.size) throw new Error(`${dir}: ${layer.digest} has ${size} bytes`);
  }
}

/** Issue 4: pull a 4 x 64 MiB image from a registry into an OCI image layout. */
export const pull: Scenario = {
  name: 'pull',
  title: 'pull a 4 x 64 MiB image into an OCI layout (issue 4)',
  targets: [
    { metric: 'wall', maxRatio: 0.8 },
    { metric: 'rss', maxMiB: 100 },
  ],
  async setup({ ociferry }) {
    const image = await benchImage('layer-64m', 4, 64 * MiB);
    const registry = await seededRegistry(REPO, TAG, image);
    const work = await mkdtemp(join(tmpdir(), 'ociferry-bench-pull-'));
    const source = `${registry.host}/${REPO}:${TAG}`;
    return {
      async run(tool, index) {
        const dir = join(work, `${tool}-${index}`);
        const windows = await openWindows([registry]);
        const measurement =
          tool === 'skopeo'
            ? await skopeoCopy(`docker://${source}`, `oci:${dir}:${TAG}`)
            : await ociferry(['copy', source, `oci:${dir}:${TAG}`, '-q']);
        const requests = await countRequests(windows);
        await verifyLayout(dir, image);
        await rm(dir, { recursive: true, force: true });
        return { measurement, requests };
      },
      async teardown() {
        await registry.stop();
        await rm(work, { recursive: true, force: true });
      },
    };
  },
};
