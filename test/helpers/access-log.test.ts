import { PassThrough } from 'node:stream';
import test from 'ava';
import { AccessLogReader, matchesFilter, parseAccessLogLine } from './access-log.ts';

// Lines captured from docker-registry 2.8.2 (distribution, gorilla CombinedLoggingHandler).
const DIGEST = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
const STATE =
  '5qVNqoImD6W_jRLDCZUAAV91uKYtsbvR7tLetMWSKzp7Ik5hbWUiOiJsaWIveCIsIlVVSUQiOiI3NmE1MjkzYy1kZjM2LTQ5MmYtYTI0ZC1lMDc1NjM2YWUxNWIiLCJPZmZzZXQiOjAsIlN0YXJ0ZWRBdCI6IjIwMjYtMTEtMjNUMTk6MTc6MDMuMTU0NTA3MDI1WiJ9';
const REAL = {
  ping: '127.0.0.1 - - [23/Nov/2026:19:12:58 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"',
  post: '127.0.0.1 - - [23/Nov/2026:19:17:03 +0000] "POST /v2/lib/x/blobs/uploads/ HTTP/1.1" 202 0 "" "curl/7.88.1"',
  put: `127.0.0.1 - - [23/Nov/2026:19:17:03 +0000] "PUT /v2/lib/x/blobs/uploads/76a5293c-df36-492f-a24d-e075636ae15b?_state=${STATE}&digest=${DIGEST} HTTP/1.1" 201 0 "" "curl/7.88.1"`,
  headMissing: `127.0.0.1 - - [23/Nov/2026:19:16:59 +0000] "HEAD /v2/lib/x/blobs/${DIGEST} HTTP/1.1" 404 157 "" "curl/7.88.1"`,
  getQuotedAgent: `127.0.0.1 - - [23/Nov/2026:19:16:59 +0000] "GET /v2/lib/x/blobs/${DIGEST} HTTP/1.1" 404 157 "" "we \\"quote\\" \\\\back é"`,
  tags: '127.0.0.1 - - [23/Nov/2026:19:16:59 +0000] "GET /v2/lib/x/tags/list?n=10&last=a%20b HTTP/1.1" 404 113 "" "curl/7.88.1"',
  getNoAgent: `127.0.0.1 - - [23/Nov/2026:19:17:03 +0000] "GET /v2/lib/x/blobs/${DIGEST} HTTP/1.1" 200 5 "" ""`,
  stderr:
    'time="2026-11-23T19:12:58.20012921Z" level=info msg="listening on 127.0.0.1:5999" go.version=go1.19.8 instance.id=3daf28cb-fde6-4126-9326-7c36f7fc4685 version=2.8.2+ds1',
};

test('parses a ping line into method, path, status, bytes, agent and time', (t) => {
  t.deepEqual(parseAccessLogLine(REAL.ping), {
    method: 'GET',
    path: '/v2/',
    query: '',
    status: 200,
    bytes: 2,
    userAgent: 'curl/7.88.1',
    time: new Date('2026-11-23T19:12:58Z'),
  });
});

test('splits the query off the path without decoding either', (t) => {
  const put = parseAccessLogLine(REAL.put);
  t.is(put?.method, 'PUT');
  t.is(put?.path, '/v2/lib/x/blobs/uploads/76a5293c-df36-492f-a24d-e075636ae15b');
  t.is(put?.query, `_state=${STATE}&digest=${DIGEST}`);
  t.is(put?.status, 201);
  const tags = parseAccessLogLine(REAL.tags);
  t.is(tags?.path, '/v2/lib/x/tags/list');
  t.is(tags?.query, 'n=10&last=a%20b');
});

test('keeps the byte count the registry reports, including error bodies of HEAD', (t) => {
  t.is(parseAccessLogLine(REAL.post)?.bytes, 0);
  t.is(parseAccessLogLine(REAL.headMissing)?.bytes, 157);
  t.is(parseAccessLogLine(REAL.getNoAgent)?.bytes, 5);
});

test('unescapes quotes and backslashes in the user agent', (t) => {
  t.is(parseAccessLogLine(REAL.getQuotedAgent)?.userAgent, 'we "quote" \\back é');
  t.is(parseAccessLogLine(REAL.getNoAgent)?.userAgent, '');
});

test('unescapes gorilla hex and unicode escapes', (t) => {
  const line =
    '127.0.0.1 - - [23/Nov/2026:19:17:03 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "a\\x01b\\u00e9\\tc"';
  t.is(parseAccessLogLine(line)?.userAgent, 'a\u0001bé\tc');
});

test('honours the zone offset of the log time', (t) => {
  const line = '127.0.0.1 - - [23/Nov/2026:21:17:03 +0200] "GET /v2/ HTTP/1.1" 200 2 "" "x"';
  t.deepEqual(parseAccessLogLine(line)?.time, new Date('2026-11-23T19:17:03Z'));
});

test('accepts a common-format line without referer and agent, and "-" for no bytes', (t) => {
  const line =
    '127.0.0.1 - - [23/Nov/2026:19:17:03 +0000] "DELETE /v2/a/manifests/t HTTP/1.1" 202 -';
  t.like(parseAccessLogLine(line), { method: 'DELETE', status: 202, bytes: 0, userAgent: '' });
});

test('ignores lines that are not access-log lines', (t) => {
  t.is(parseAccessLogLine(REAL.stderr), undefined);
  t.is(parseAccessLogLine(''), undefined);
  t.is(parseAccessLogLine('127.0.0.1 - - [not a time] "GET /v2/ HTTP/1.1" 200 2 "" ""'), undefined);
});

test('filters by method, path and status together', (t) => {
  const entry = parseAccessLogLine(REAL.getNoAgent);
  if (!entry) return t.fail('line did not parse');
  t.true(matchesFilter(entry, {}));
  t.true(matchesFilter(entry, { method: 'get', path: /\/blobs\//, status: 200 }));
  t.false(matchesFilter(entry, { method: 'HEAD' }));
  t.false(matchesFilter(entry, { path: /\/manifests\// }));
  t.false(matchesFilter(entry, { method: 'GET', status: 404 }));
});

test('reader joins lines split across chunks and skips other output', (t) => {
  const stream = new PassThrough();
  const reader = new AccessLogReader(stream);
  const text = `${REAL.ping}\n${REAL.stderr}\n${REAL.post}\n${REAL.tags}`;
  stream.write(text.slice(0, 30));
  stream.write(text.slice(30, 200));
  stream.write(`${text.slice(200)}\n`);
  t.deepEqual(
    reader.entries.map((e) => `${e.method} ${e.path}`),
    ['GET /v2/', 'POST /v2/lib/x/blobs/uploads/', 'GET /v2/lib/x/tags/list'],
  );
});

test('reader waitFor resolves when a matching line arrives later', async (t) => {
  const stream = new PassThrough();
  const reader = new AccessLogReader(stream);
  stream.write(`${REAL.ping}\n`);
  let resolved = false;
  const waiting = reader
    .waitFor((e) => e.method === 'POST', AbortSignal.timeout(5000))
    .then(() => {
      resolved = true;
    });
  await new Promise((resolve) => setImmediate(resolve));
  t.false(resolved);
  stream.write(`${REAL.post}\n`);
  await waiting;
  t.true(resolved);
});

test('reader waitFor rejects with the abort reason when no line matches', async (t) => {
  const reader = new AccessLogReader(new PassThrough());
  const controller = new AbortController();
  const waiting = reader.waitFor((e) => e.method === 'PATCH', controller.signal);
  controller.abort(new Error('gave up'));
  await t.throwsAsync(waiting, { message: 'gave up' });
});
