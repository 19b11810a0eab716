// Child process for the lock tests: takes the lock file LOCK, says so, and holds it until killed.
// Usage: lock-holder.ts LOCK
import { withFileLock } from '../../../src/layout/lock.ts';

const [lockPath = ''] = process.argv.slice(2);
await withFileLock(lockPath, { timeoutMs: 10_000, staleMs: 300 }, async () => {
  process.stdout.write('held\n');
  await new Promise(() => setInterval(() => {}, 60_000));
});
