import { type Measurement, measure } from './measure.ts';

/**
 * `skopeo copy` between two transports (`docker://HOST/REPO:TAG`, `oci:DIR:TAG`), measured. TLS
 * verification is off for every `docker://` side (the registries are plain HTTP on loopback),
 * and `--quiet` keeps progress output out of the measurement, as ociferry runs with `-q`.
 */
export function skopeoCopy(source: string, destination: string): Promise<Measurement> {
  const tls = (ref: string, flag: string) => (ref.startsWith('docker://') ? [flag] : []);
  return measure('skopeo', [
    'copy',
    '--quiet',
    ...tls(source, '--src-tls-verify=false'),
    ...tls(destination, '--dest-tls-verify=false'),
    source,
    destination,
  ]);
}
