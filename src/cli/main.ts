// The CLI run from its sources (`tsx src/cli/main.ts`, the tests). The installed bin is bin.ts,
// which runs the bundle of entry.ts.
import { setFlagsFromString } from 'node:v8';

// See bin.ts. Must be set before undici is loaded, hence the dynamic import.
setFlagsFromString('--liftoff-only');
const { main } = await import('./entry.ts');
await main();
