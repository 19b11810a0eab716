// Child process for the crash test: streams a blob slowly into a layout until it is killed.
// Usage: slow-writer.ts DIR DIGEST SIZE [FILL]
import { Readable } from 'node:stream';
import { LayoutStore } from '../../../src/layout/index.ts';

const [dir = '', digest = '', size = '0', fill = '97'] = process.argv.slice(2);
const store = await LayoutStore.open(dir);
const chunk = Buffer.alloc(1024, Number(fill));
let sent = 0;
const body = new Readable({
  read() {
    setTimeout(() => {
      sent += chunk.length;
      this.push(sent <= Number(size) ? chunk : null);
    }, 20);
  },
});
let announced = false;
await store.writeBlob({ digest, size: Number(size) }, body, {
  onProgress: () => {
    if (!announced) process.stdout.write('writing\n');
    announced = true;
  },
});
