import test from 'ava';
import { PlainProgress } from '../../../src/cli/progress/plain.ts';

const A = `sha256:${'a'.repeat(64)}`;

test('plain progress prints one line per finished step and nothing for byte progress', (t) => {
  const lines: string[] = [];
  const progress = new PlainProgress({ write: (text) => lines.push(text) > 0 });
  progress.onEvent({ type: 'blob-skipped', digest: A, size: 10 });
  progress.onEvent({ type: 'blob-mounted', digest: A, size: 1200, from: 'team/base' });
  progress.onEvent({ type: 'blob-start', digest: A, size: 1_234_567 });
  progress.onEvent({ type: 'blob-progress', digest: A, size: 1_234_567, bytes: 1000 });
  progress.onEvent({ type: 'blob-done', digest: A, size: 1_234_567 });
  progress.onEvent({
    type: 'manifest-pushed',
    descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: A, size: 500 },
    tag: 'v1',
  });
  progress.stop();
  t.deepEqual(lines, [
    'skipped sha256:aaaaaaaaaaaa… 10 B (already there)\n',
    'mounted sha256:aaaaaaaaaaaa… 1.20 kB from team/base\n',
    'uploaded sha256:aaaaaaaaaaaa… 1.23 MB\n',
    'pushed manifest sha256:aaaaaaaaaaaa… as v1 (application/vnd.oci.image.manifest.v1+json)\n',
  ]);
});
