import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { oncePerRun } from './run-dir.ts';

const execFileAsync = promisify(execFile);

let certificate: Promise<{ key: Buffer; cert: Buffer }> | undefined;

/**
 * A self-signed P-256 certificate for `127.0.0.1` (subject and IP SAN), made with `openssl` once
 * per test run (see `oncePerRun`) and shared by every registry and TLS front: PEM key and
 * certificate.
 */
export function selfSignedCertificate(): Promise<{ key: Buffer; cert: Buffer }> {
  certificate ??= (async () => {
    const dir = await oncePerRun('tls-certificate', async (dir) => {
      await mkdir(dir);
      await execFileAsync('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ]);
    });
    const [key, cert] = await Promise.all([
      readFile(join(dir, 'key.pem')),
      readFile(join(dir, 'cert.pem')),
    ]);
    return { key, cert };
  })();
  return certificate;
}
