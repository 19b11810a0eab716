import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { InvalidDigestError, parseDigest } from '../src/digest/index.ts';
import { ERROR_CODES, isErrorCode, isOciferryError, OciferryError } from '../src/errors.ts';
import { LayoutInvalidError } from '../src/layout/index.ts';
import { RegistryError } from '../src/registry/errors.ts';

const root = path.resolve(import.meta.dirname, '..');

test('isOciferryError matches by code whichever class threw', (t) => {
  const fromRegistry = new RegistryError({
    method: 'GET',
    url: 'u',
    status: 404,
    code: 'MANIFEST_UNKNOWN',
  });
  const fromLayout = new OciferryError('MANIFEST_UNKNOWN', 'not in index.json');
  for (const error of [fromRegistry, fromLayout]) {
    t.true(isOciferryError(error, 'MANIFEST_UNKNOWN'));
    t.true(isOciferryError(error, 'NAME_UNKNOWN', 'MANIFEST_UNKNOWN'));
    t.false(isOciferryError(error, 'BLOB_UNKNOWN'));
    t.true(isOciferryError(error));
  }
  t.false(isOciferryError(new Error('plain'), 'MANIFEST_UNKNOWN'));
  t.false(isOciferryError(Object.assign(new Error('look-alike'), { code: 'MANIFEST_UNKNOWN' })));
  t.false(isOciferryError(undefined));
  const digest = (() => {
    try {
      return parseDigest('sha256:nope');
    } catch (error) {
      return error;
    }
  })();
  t.true(digest instanceof InvalidDigestError && isOciferryError(digest, 'DIGEST_INVALID'));
  t.true(isOciferryError(new LayoutInvalidError('p', 'r'), 'LAYOUT_INVALID'));
});

test('codes are unique, in one style, and isErrorCode knows exactly them', (t) => {
  t.is(new Set(ERROR_CODES).size, ERROR_CODES.length);
  for (const code of ERROR_CODES) {
    t.regex(code, /^[A-Z]+(?:_[A-Z]+)*$/);
    t.false(/^(?:INVALID|UNSUPPORTED|UNEXPECTED|UNSAFE|UNKNOWN)_/.test(code), code);
    t.true(isErrorCode(code));
  }
  t.false(isErrorCode('INVALID_REFERENCE'));
  t.false(isErrorCode(7));
});

test('every code the README and the service API name in their paragraphs on codes is a code', async (t) => {
  for (const file of ['README.md', 'docs/cache-service.md']) {
    const text = await readFile(path.join(root, file), 'utf8');
    for (const paragraph of text.split('\n\n').filter((p) => /\bcodes?\b/.test(p))) {
      for (const [, name = ''] of paragraph.matchAll(/`([A-Z][A-Z_]{4,})`/g)) {
        if (name !== 'ERROR_CODES') t.true(isErrorCode(name), `${file} names ${name}`);
      }
    }
  }
});
