import { Readable } from 'node:stream';
import test from 'ava';
import { readBody } from '../../src/registry/body.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import type { HttpResponse } from '../../src/registry/http.ts';

/** A response whose body is `chunks` of 1 KiB each, pulled lazily; counts the chunks produced. */
function response(chunks: number, headers: Record<string, string> = {}) {
  let produced = 0;
  const body = new Readable({
    highWaterMark: 1024,
    read() {
      if (produced === chunks) this.push(null);
      else {
        produced++;
        this.push(Buffer.alloc(1024, 1));
      }
    },
  });
  const fake = {
    status: 200,
    headers,
    body,
    url: new URL('http://r.example/v2/a/manifests/v1?token=s3cr3t'),
  };
  return { response: fake as unknown as HttpResponse, produced: () => produced, body };
}

test('a body under the cap is read whole', async (t) => {
  const { response: r } = response(3);
  t.is((await readBody(r, 'GET', 4096)).length, 3072);
});

test('a body without Content-Length is cut off as soon as it passes the cap', async (t) => {
  const { response: r, produced, body } = response(1000);
  const err = await t.throwsAsync(readBody(r, 'GET', 4096, 'manifest'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'SIZE_EXCEEDED');
  t.false(err?.message.includes('s3cr3t'));
  t.true(produced() < 10, `read ${produced()} KiB of 1000`);
  t.true(body.destroyed);
});

test('a Content-Length over the cap is refused before reading', async (t) => {
  const { response: r, produced } = response(1000, { 'content-length': String(1000 * 1024) });
  const err = await t.throwsAsync(readBody(r, 'GET', 4096), { instanceOf: RegistryError });
  t.is(err?.code, 'SIZE_EXCEEDED');
  t.true(produced() <= 1);
});
