// Child process for the concurrency test: writes COUNT images, tagged PREFIX-0 .. PREFIX-(COUNT-1).
// Usage: tag-writer.ts DIR PREFIX COUNT
import { LayoutStore } from '../../../src/layout/index.ts';
import { writeImage } from './image.ts';

const [dir = '', prefix = '', count = '0'] = process.argv.slice(2);
const store = await LayoutStore.open(dir, { lockTimeoutMs: 60_000 });
for (let i = 0; i < Number(count); i++) {
  const image = await writeImage(store, [Buffer.from(`${prefix}-${i}`)]);
  await store.putTag(`${prefix}-${i}`, image.manifest);
}
