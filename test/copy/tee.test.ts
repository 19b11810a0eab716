import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { Tee } from '../../src/copy/tee.ts';

const CHUNK = 64 * 1024;
const CHUNKS = 64;

/** A source of `CHUNKS` chunks that records how many chunks were pulled from it. */
function countingSource(failAfter?: number) {
  const state = { opened: 0, pulled: 0, hash: createHash('sha256') };
  const open = async (): Promise<Readable> => {
    state.opened++;
    return new Readable({
      read() {
        if (failAfter !== undefined && state.pulled === failAfter) {
          this.destroy(new Error('source broke'));
          return;
        }
        if (state.pulled === CHUNKS) {
          this.push(null);
          return;
        }
        const chunk = Buffer.alloc(CHUNK, state.pulled % 251);
        state.hash.update(chunk);
        state.pulled++;
        this.push(chunk);
      },
    });
  };
  return { state, open };
}

/** Read a stream to its end: its byte count and sha256. */
async function drain(stream: Readable): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

test('every branch gets every byte, read once, at the pace of the slowest', async (t) => {
  const { state, open } = countingSource();
  const tee = new Tee(open, 2);
  const fast = tee.claim(0)!;
  const slow = tee.claim(1)!;
  const fastDone = drain(fast);
  await sleep(50);
  // The slow branch reads nothing yet: the source may run ahead by a few buffers only.
  t.true(state.pulled < 8, `pulled ${state.pulled} chunks while one branch was not reading`);
  const [a, b] = await Promise.all([fastDone, drain(slow)]);
  const expected = state.hash.digest('hex');
  t.deepEqual(a, { bytes: CHUNK * CHUNKS, sha256: expected });
  t.deepEqual(b, a);
  t.is(state.opened, 1);
});

test('the source is opened on the first claim, and not at all when every branch is released', async (t) => {
  const { state, open } = countingSource();
  const tee = new Tee(open, 2);
  tee.release(0);
  tee.release(1);
  await sleep(10);
  t.is(state.opened, 0);
  t.is(tee.claim(0), undefined, 'a released branch cannot be claimed');
  t.is(state.opened, 0);
});

test('a released branch stops holding the others back', async (t) => {
  const { state, open } = countingSource();
  const tee = new Tee(open, 2);
  const kept = tee.claim(0)!;
  tee.claim(1);
  const done = drain(kept);
  await sleep(20);
  tee.release(1);
  t.is((await done).bytes, CHUNK * CHUNKS);
  t.is(state.pulled, CHUNKS);
});

test('a branch nobody claims is cut loose after the grace period; its consumer reads alone', async (t) => {
  const { state, open } = countingSource();
  const tee = new Tee(open, 2, { claimGraceMs: 30 });
  const started = Date.now();
  t.is((await drain(tee.claim(0)!)).bytes, CHUNK * CHUNKS);
  t.true(Date.now() - started >= 25, 'the unclaimed branch held the read back for the grace');
  t.is(tee.claim(1), undefined);
  t.deepEqual([...tee.claimed], [0]);
  t.is(state.opened, 1);
});

test('a branch claimed late but within the grace still gets every byte', async (t) => {
  const { open } = countingSource();
  const tee = new Tee(open, 2, { claimGraceMs: 1000 });
  const first = drain(tee.claim(0)!);
  await sleep(50);
  const late = tee.claim(1);
  t.truthy(late);
  const [a, b] = await Promise.all([first, drain(late!)]);
  t.is(b.bytes, CHUNK * CHUNKS);
  t.deepEqual(b, a);
});

test('a source error reaches every branch, and a later claim throws it', async (t) => {
  const { open } = countingSource(5);
  const tee = new Tee(open, 3, { claimGraceMs: 20 });
  const reading = [drain(tee.claim(0)!), drain(tee.claim(1)!)];
  for (const branch of reading) await t.throwsAsync(branch, { message: 'source broke' });
  t.throws(() => tee.claim(2), { message: 'source broke' });
});
