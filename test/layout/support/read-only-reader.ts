// Child process for the read-only test: run inside a read-only bind mount of DIR, reads the
// layout, tries one write, and prints what happened as JSON.
// Usage: read-only-reader.ts DIR TAG
import { LayoutStore } from '../../../src/layout/index.ts';

const [dir = '', tag = ''] = process.argv.slice(2);
const store = await LayoutStore.open(dir);
const desc = await store.resolveTag(tag);
const manifest = desc ? await store.readBytes(desc.digest) : undefined;
const write = await store
  .putTag('new', desc ?? { mediaType: 'x', digest: `sha256:${'0'.repeat(64)}`, size: 0 })
  .then(
    () => 'written',
    (error: { code?: string }) => error.code,
  );
process.stdout.write(
  JSON.stringify({
    tags: await store.tags(),
    digest: desc?.digest,
    bytes: manifest?.length,
    write,
  }),
);
