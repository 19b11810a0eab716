import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/**
 * What a TLS handshake with a host showed: it speaks TLS (`tls`, whether or not the handshake
 * then failed), it answered the handshake in plain HTTP (`plain-http`), nothing could be told
 * because the connection failed before the server said a byte (`unknown`: refused, reset, closed
 * or aborted), or the server said nothing before the timeout (`silent`).
 */
export type Handshake = 'tls' | 'plain-http' | 'unknown' | 'silent';

/** Options of {@link probeHandshake}. */
export interface ProbeOptions {
  /** Give up (`silent`) after this long; default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Start a TLS handshake with `host` (`name:port`, IPv6 in brackets) on a connection of its own,
 * without checking the certificate, and tell whether the server speaks TLS or answers in plain
 * HTTP: the test Go's TLS client makes (a first record that starts with `HTTP/`), which docker
 * and containerd use to fall back to plain HTTP for registries allowed it. No HTTP request is
 * sent; the connection is closed at once.
 */
export function probeHandshake(host: string, options: ProbeOptions = {}): Promise<Handshake> {
  const { timeoutMs = 30_000, signal } = options;
  const url = new URL(`https://${host}/`);
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 443);
  if (signal?.aborted) return Promise.resolve('unknown');
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    let connected = false;
    const raw = net.connect({ host: hostname, port });
    // The TLS socket reads through this pass-through, so that the server's first bytes can be seen.
    const tap = new Duplex({
      read: () => raw.resume(),
      write: (chunk, _encoding, callback) => raw.write(chunk, callback),
      final: (callback) => raw.end(callback),
    });
    raw.on('connect', () => {
      connected = true;
    });
    raw.on('data', (chunk: Buffer) => {
      if (head.length < 5) head = Buffer.concat([head, chunk]).subarray(0, 5);
      if (!tap.push(chunk)) raw.pause();
    });
    raw.on('end', () => tap.push(null));
    const secure = tls.connect({
      socket: tap,
      servername: net.isIP(hostname) ? undefined : hostname,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(() => finish('silent'), timeoutMs);
    const onAbort = () => finish('unknown');
    signal?.addEventListener('abort', onAbort, { once: true });
    function finish(result: Handshake): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      secure.destroy();
      tap.destroy();
      raw.destroy();
      resolve(result);
    }
    // The server's first bytes tell, however the connection then ended: a plain-HTTP server
    // answers a handshake with a 400 and closes, and may reset the connection right after.
    const failed = () => {
      if (head.toString('latin1') === 'HTTP/') finish('plain-http');
      else finish(connected && head.length > 0 ? 'tls' : 'unknown');
    };
    secure.once('secureConnect', () => finish('tls'));
    secure.once('error', failed);
    secure.once('close', failed);
    raw.once('error', failed);
  });
}
