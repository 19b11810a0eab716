import test from 'ava';
import { redactUrl } from '../../src/registry/redact.ts';

test('user info and secret query values are removed from URLs', (t) => {
  t.is(
    redactUrl('https://user:pw@r.example/v2/a/blobs/sha256:1'),
    'https://r.example/v2/a/blobs/sha256:1',
  );
  t.is(
    redactUrl('https://s3.example/b?X-Amz-Signature=abc&X-Amz-Credential=k%2F1&sig=zz&token=t&n=5'),
    'https://s3.example/b?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&sig=REDACTED&token=REDACTED&n=5',
  );
  t.is(
    redactUrl('http://r/v2/a/blobs/uploads/u?_state=secretstate&digest=sha256%3Aab'),
    'http://r/v2/a/blobs/uploads/u?_state=REDACTED&digest=sha256%3Aab',
  );
  t.is(
    redactUrl(new URL('https://auth.example/token?service=reg&scope=repository:a:pull&account=me')),
    'https://auth.example/token?service=reg&scope=repository:a:pull&account=REDACTED',
  );
  t.is(redactUrl('not a url'), '(invalid URL)');
});
